// TEMPORARY: runs the testkit transport suite against src until the core index exports rpc.
import { describeTransport } from '../../../testkit/src/transport.js';
import { MemoryBroker, MemoryTransport } from '../../src/rpc/index.js';

const broker = new MemoryBroker();
describeTransport({ name: 'MemoryTransport (src)', create: () => new MemoryTransport({ broker }) });
