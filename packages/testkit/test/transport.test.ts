import { MemoryBroker, MemoryTransport } from '@stratus/core';
import { describeTransport } from '../src/transport.js';

// One broker for the whole suite, like one RabbitMQ: every test uses its own random topics.
const broker = new MemoryBroker();
describeTransport({ name: 'MemoryTransport', create: () => new MemoryTransport({ broker }) });
