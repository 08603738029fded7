/**
 * The one tfjs-core instance of the library. Every layer, model and op imports `tf` from here; which backend runs it
 * (and everything else that exists for speed) lives in src/runtime/, which `loadBackend()` sets up.
 */
import * as tf from '@tensorflow/tfjs-core';

export { tf };
