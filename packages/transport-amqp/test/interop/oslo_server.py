"""An oslo.messaging RPC server for the interop test: Stratus calls it.

Usage: /usr/bin/python3 oslo_server.py URL EXCHANGE TOPIC SERVER
Prints "READY" once consuming; stops when stdin closes.
"""
import os
import sys
import threading

from oslo_config import cfg
import oslo_messaging


class Endpoint(object):
    def __init__(self):
        self.casts = []
        self.fanouts = []

    def echo(self, ctxt, **kwargs):
        ctx = ctxt.to_dict() if hasattr(ctxt, 'to_dict') else dict(ctxt)
        return {'args': kwargs, 'user': ctx.get('user_id') or ctx.get('user'),
                'project': ctx.get('project_id'), 'request_id': ctx.get('request_id'),
                'roles': ctx.get('roles'), 'is_admin': ctx.get('is_admin')}

    def nothing(self, ctxt):
        return None

    def fail(self, ctxt, reason):
        raise ValueError('oslo refuses: %s' % reason)

    def record(self, ctxt, value):
        self.casts.append(value)

    def record_fanout(self, ctxt, value):
        self.fanouts.append(value)

    def seen(self, ctxt):
        return {'casts': self.casts, 'fanouts': self.fanouts}


def main():
    url, exchange, topic, server = sys.argv[1:5]
    # The global ConfigOpts: oslo.messaging registers some options (metrics) only there.
    conf = cfg.CONF
    conf([], project='stratus-interop')
    transport = oslo_messaging.get_rpc_transport(conf, url=url)
    target = oslo_messaging.Target(exchange=exchange, topic=topic, server=server, version='1.3')
    rpc = oslo_messaging.get_rpc_server(transport, target, [Endpoint()], executor='threading')
    rpc.start()
    print('READY', flush=True)
    # Block until the test closes stdin.
    done = threading.Event()

    def watch():
        sys.stdin.read()
        done.set()

    threading.Thread(target=watch, daemon=True).start()
    done.wait()
    rpc.stop()
    rpc.wait()
    # transport.cleanup() waits ~10 s for oslo's heartbeat thread; nothing is left to flush.
    os._exit(0)


if __name__ == '__main__':
    main()
