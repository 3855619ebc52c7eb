"""An oslo.messaging RPC client for the interop test: it calls a Stratus service.

Usage: /usr/bin/python3 oslo_client.py URL EXCHANGE TOPIC SERVER
Prints one JSON object describing every outcome, then exits.
"""
import json
import os
import sys

from oslo_config import cfg
from oslo_context import context
import oslo_messaging


def main():
    url, exchange, topic, server = sys.argv[1:5]
    # The global ConfigOpts: oslo.messaging registers some options (metrics) only there.
    conf = cfg.CONF
    conf([], project='stratus-interop')
    transport = oslo_messaging.get_rpc_transport(conf, url=url)
    target = oslo_messaging.Target(exchange=exchange, topic=topic, version='1.0')
    client = oslo_messaging.get_rpc_client(transport, target, timeout=10)
    ctx = context.RequestContext(user_id='py-user', project_id='py-project', roles=['member'],
                                 request_id='req-00000000-1111-2222-3333-444444444444')
    out = {}
    out['add'] = client.call(ctx, 'add', a=2, b=40)
    out['whoami'] = client.prepare(server=server).call(ctx, 'whoami')
    out['nothing'] = client.call(ctx, 'nothing')
    try:
        client.call(ctx, 'lookup', name='missing')
        out['lookup'] = 'no error'
    except oslo_messaging.RemoteError as e:
        out['lookup'] = {'exc_type': e.exc_type, 'value': e.value}
    try:
        client.call(ctx, 'add', a='two', b=40)
        out['invalid'] = 'no error'
    except oslo_messaging.RemoteError as e:
        out['invalid'] = {'exc_type': e.exc_type, 'value': e.value}
    try:
        client.prepare(version='2.0').call(ctx, 'add', a=1, b=1)
        out['version'] = 'no error'
    except oslo_messaging.RemoteError as e:
        out['version'] = {'exc_type': e.exc_type, 'value': e.value}
    client.cast(ctx, 'remember', value='from-python-cast')
    client.prepare(fanout=True).cast(ctx, 'remember', value='from-python-fanout')
    # oslo never deletes its reply queue (it expires after rabbit_transient_queues_ttl): report it.
    out['reply_q'] = getattr(transport._driver, '_reply_q', None)
    print(json.dumps(out), flush=True)
    # transport.cleanup() waits ~10 s for oslo's heartbeat thread; nothing is left to flush.
    os._exit(0)


if __name__ == '__main__':
    main()
