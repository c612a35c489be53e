// spore's nodejs example as an ES module: handler "esm.hello".
import { hostname } from 'node:os';

const started = new Date().toISOString(); // top-level code runs once, at INST_INIT

export const hello = async (event, context) => ({
    message: `hello, ${event?.name ?? 'world'}`,
    module: 'esm',
    hostname: hostname(),
    started,
    request_id: context.awsRequestId,
});
