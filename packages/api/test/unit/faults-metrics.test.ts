import {
  ConflictError,
  DriverFailureError,
  InvalidInputError,
  InvalidStateError,
  NotFoundError,
  QuotaExceededError,
  StoreUnavailableError,
  UnauthenticatedError,
} from '@stratus/core';
import { expect } from 'chai';
import { ApiMetrics, faultBody, faultOf, resolveApiConfig } from '../../src/index.js';

describe('faults', () => {
  it('maps Stratus errors to the upstream statuses of each API', () => {
    expect(faultOf(new NotFoundError('Volume', 'x'), 'volume').status).to.equal(404);
    expect(faultOf(new InvalidInputError('bad'), 'compute').status).to.equal(400);
    expect(faultOf(new InvalidStateError('busy'), 'volume')).to.include({
      status: 400,
      message: 'Invalid volume: busy',
    });
    expect(faultOf(new InvalidStateError('busy'), 'compute').status).to.equal(409);
    expect(faultOf(new ConflictError('dup'), 'identity').status).to.equal(409);
    expect(faultOf(new QuotaExceededError('full'), 'volume').status).to.equal(413);
    expect(faultOf(new QuotaExceededError('full'), 'compute').status).to.equal(403);
    expect(faultOf(new UnauthenticatedError(), 'compute').status).to.equal(401);
    expect(faultOf(new StoreUnavailableError('down'), 'compute').status).to.equal(503);
  });

  it('hides unexpected errors behind a generic 500', () => {
    const driver = faultOf(new DriverFailureError('secret internals'), 'compute');
    expect(driver).to.include({ status: 500, expected: false });
    expect(driver.message).to.not.contain('secret');
    expect(faultOf(new TypeError('x is undefined'), 'volume').status).to.equal(500);
  });

  it('formats bodies as Keystone, Nova/Cinder and Glance do', () => {
    expect(faultBody('identity', 404, 'm')).to.deep.equal({
      error: { code: 404, title: 'Not Found', message: 'm' },
    });
    expect(faultBody('compute', 409, 'm')).to.deep.equal({ conflictingRequest: { code: 409, message: 'm' } });
    expect(faultBody('volume', 413, 'm')).to.deep.equal({ overLimit: { code: 413, message: 'm' } });
    expect(faultBody('volume', 500, 'm')).to.deep.equal({ computeFault: { code: 500, message: 'm' } });
    expect(faultBody('image', 404, 'm')).to.equal('404 Not Found\n\nm\n\n');
  });
});

describe('ApiMetrics', () => {
  it('renders counters and cumulative histogram buckets in Prometheus text format', () => {
    const metrics = new ApiMetrics();
    metrics.observe('GET', '/v2.1/servers', 200, 0.003);
    metrics.observe('GET', '/v2.1/servers', 200, 0.2);
    metrics.observe('GET', '/a"b', 500, 20);
    const text = metrics.render();
    expect(text).to.contain(
      'stratus_api_requests_total{method="GET",route="/v2.1/servers",status="200"} 2\n',
    );
    expect(text).to.contain(
      'stratus_api_request_duration_seconds_bucket{method="GET",route="/v2.1/servers",le="0.005"} 1\n',
    );
    expect(text).to.contain(
      'stratus_api_request_duration_seconds_bucket{method="GET",route="/v2.1/servers",le="0.25"} 2\n',
    );
    expect(text).to.contain(
      'stratus_api_request_duration_seconds_bucket{method="GET",route="/a\\"b",le="10"} 0\n',
    );
    expect(text).to.contain(
      'stratus_api_request_duration_seconds_bucket{method="GET",route="/a\\"b",le="+Inf"} 1\n',
    );
    expect(metrics.requestCount('GET', '/v2.1/servers', 200)).to.equal(2);
  });
});

describe('resolveApiConfig', () => {
  it('applies defaults: port 8776, m1.* flavors, the cirros image, one-hour tokens', () => {
    const config = resolveApiConfig({});
    expect(config.listen).to.deep.equal({ host: '127.0.0.1', port: 8776 });
    expect(config.flavors.map((f) => f.name)).to.deep.equal([
      'm1.tiny',
      'm1.small',
      'm1.medium',
      'm1.large',
      'm1.xlarge',
    ]);
    expect(config.images.map((i) => i.name)).to.deep.equal(['cirros']);
    expect(config.tokenTtlSec).to.equal(3600);
  });

  it('lists every problem, including plain passwords and duplicate flavor ids', () => {
    let error: { code?: string; message?: string } = {};
    try {
      resolveApiConfig({
        users: [{ name: 'x', passwordHash: 'hunter2', project: 'p' }],
        listen: { port: 'http' },
      });
    } catch (e) {
      error = e as typeof error;
    }
    expect(error.code).to.equal('CONFIG_INVALID');
    expect(error.message).to.contain('/users/0/passwordHash').and.contain('/listen/port');
    expect(() =>
      resolveApiConfig({
        flavors: [
          { id: '1', name: 'a', vcpus: 1, ramMiB: 1, diskGiB: 1 },
          { id: '1', name: 'b', vcpus: 1, ramMiB: 1, diskGiB: 1 },
        ],
      }),
    ).to.throw(/flavors\/1\/id/);
  });
});
