/** The operator console under /console, when `serve --console` asks for it (src/console/). */
import { fileLedger, storeLedger } from '../../console/ledger.js';
import type { FileStore } from '../../store/file-store.js';
import { consoleRoutes as routes } from '../../console/routes.js';
import type { RouteFamily } from '../context.js';

export const consoleRoutes: RouteFamily = ({ rt, options, onClose }) =>
  options.console === undefined ? [] : routes({ rt, assets: options.console.assets, ledger: rt.store.kind === 'file' ? fileLedger(rt.store as FileStore) : storeLedger(rt.store), secureCookie: options.console.secureCookie, onClose });
