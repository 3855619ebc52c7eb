"""Closed-loop oslo.messaging RPC client: N threads calling echo.

Args: url topic concurrency seconds warmup_seconds payload_bytes. Prints one JSON line:
{"ops", "seconds", "rate", "p50", "p99", "errors"} (latencies in ms).
"""
import json
import sys
import threading
import time

from oslo_config import cfg
import oslo_messaging as messaging


def main():
    url, topic = sys.argv[1], sys.argv[2]
    # oslo picks its driver by scheme: amqp:// would be the AMQP 1.0 driver.
    url = 'rabbit://' + url.split('://', 1)[1] if url.startswith('amqp://') else url
    concurrency, seconds, warmup, size = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
    transport = messaging.get_rpc_transport(cfg.CONF, url=url)
    client = messaging.get_rpc_client(transport, messaging.Target(topic=topic), timeout=60)
    payload = 'x' * size

    def loop(until, latencies, errors):
        while time.monotonic() < until:
            start = time.monotonic()
            try:
                client.call({}, 'echo', payload=payload)
                latencies.append((time.monotonic() - start) * 1000)
            except Exception:  # noqa: BLE001 - counted, the run goes on
                errors.append(1)

    def window(duration):
        latencies, errors = [], []
        until = time.monotonic() + duration
        threads = [threading.Thread(target=loop, args=(until, latencies, errors)) for _ in range(concurrency)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return latencies, errors, time.monotonic() - start

    if warmup > 0:
        window(warmup)
    latencies, errors, elapsed = window(seconds)
    latencies.sort()

    def q(p):
        if not latencies:
            return 0
        return latencies[min(len(latencies) - 1, max(0, int(-(-p * len(latencies) // 1)) - 1))]

    print(json.dumps({'ops': len(latencies), 'seconds': elapsed, 'rate': len(latencies) / elapsed,
                      'p50': q(0.5), 'p99': q(0.99), 'errors': len(errors)}), flush=True)
    transport.cleanup()


if __name__ == '__main__':
    main()
