import { describeTransport } from '@stratus/testkit/transport';
import type { ChannelModel } from 'amqplib';
import { AmqpTransport } from '../../src/index.js';
import { AMQP_URL, adminConnection, brokerProblem, cleanup, skipUnless, uniqueName } from '../helpers.js';

describe('AmqpTransport against RabbitMQ', () => {
  const controlExchange = uniqueName();
  const created: AmqpTransport[] = [];
  let admin: ChannelModel | undefined;

  before(async function () {
    skipUnless(this, await brokerProblem());
    admin = await adminConnection();
  });

  after(async () => {
    if (admin) {
      await cleanup(admin, created, [controlExchange]);
      await admin.close();
    }
  });

  describeTransport({
    name: 'amqp',
    create: () => {
      const transport = new AmqpTransport({ urls: [AMQP_URL], controlExchange });
      created.push(transport);
      return transport;
    },
    settleMs: 100,
    waitMs: 5000,
  });
});
