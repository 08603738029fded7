// Public API of src/runtime: the backend (choice, bootstrap, the log line) and the host decoders generate attaches.
export * from './backend';
export { registerHostDecoder, unregisterHostDecoder, registeredHostDecoders, hostDecoderFor, type TokenStepper, type HostDecoderFactory, type HostDecoderChoice, type HostDecodingCache } from './host-decoders';
export { createDogeHostDecoder, dogeHostDecoderUnsupported, dogeModelRefusal, decodeHeadThreads, runningOtherTasks, DMATTN_OPTIONS, CDMOE_OPTIONS, MLP_OPTIONS, DOGE_CONFIG_FIELDS, type HostDecodable, type HostDecodableLayer, type Mirror } from './doge-host-decoder';
