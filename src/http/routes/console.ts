/** The operator console under /console, when `serve --console` asks for it (src/console/). */
import { fileLedger } from '../../console/ledger.js';
import { consoleRoutes as routes } from '../../console/routes.js';
import type { RouteFamily } from '../context.js';

export const consoleRoutes: RouteFamily = ({ rt, options, onClose }) =>
  options.console === undefined ? [] : routes({ rt, assets: options.console.assets, ledger: fileLedger(rt.store), secureCookie: options.console.secureCookie, onClose });
