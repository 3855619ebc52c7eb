"""oslo.messaging RPC server for the bench: echo(ctx, payload). Args: url topic."""
import signal
import sys

from oslo_config import cfg
import oslo_messaging as messaging


class Endpoint:
    def echo(self, ctxt, payload):
        return payload


def main():
    url, topic = sys.argv[1], sys.argv[2]
    # oslo picks its driver by scheme: amqp:// would be the AMQP 1.0 driver.
    url = 'rabbit://' + url.split('://', 1)[1] if url.startswith('amqp://') else url
    transport = messaging.get_rpc_transport(cfg.CONF, url=url)
    target = messaging.Target(topic=topic, server='bench')
    server = messaging.get_rpc_server(transport, target, [Endpoint()], executor='threading')
    server.start()
    print('READY', flush=True)
    signal.sigwait([signal.SIGTERM, signal.SIGINT])
    server.stop()
    server.wait()
    transport.cleanup()


if __name__ == '__main__':
    main()
