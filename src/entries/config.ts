/**
 * `cairn-lake/config`: config files (also in the core entry), and the API to add a kind of
 * location to them.
 */
export { CONFIG_NAMES, findConfig, loadConfig, type LoadOptions, type StorageConfig } from '../config/load.js';
export { registerLocationKind, type BuildContext, type LocationFactory } from '../config/kinds.js';
export { ConfigNode } from '../config/node.js';
export { ConfigFileError } from '../errors.js';
