/** A call the console sends, in the words the page shows before it is signed. */

import { formatBalance } from './balance';
import type { Call } from './calls';

type Fields = Record<string, unknown>;

function words(pallet: string, name: string, f: Fields): string {
  const app = `app ${String(f.app)}`;
  switch (`${pallet}.${name}`) {
    case 'balances.transfer':
      return `transfer ${formatBalance(String(f.amount))} to ${String(f.to)}`;
    case 'balances.set_sealing_key':
      return 'publish your owner sealing key, to which workers seal your logs';
    case 'apps.create': {
      const spec = f.spec as { name?: string } | undefined;
      return `deploy the app "${spec?.name ?? ''}" with a deposit of ${formatBalance(String(f.deposit))}`;
    }
    case 'apps.update': {
      const spec = f.spec as { name?: string } | undefined;
      return `update ${app} to a new version ("${spec?.name ?? ''}")${f.secrets_grant ? ', whose image receives its secrets' : ''}`;
    }
    case 'apps.recharge':
      return `recharge ${app} with ${formatBalance(String(f.amount))}`;
    case 'apps.restart':
      return `restart ${app}`;
    case 'apps.stop':
      return `stop ${app} for good (what is left of its deposit returns to you)`;
    case 'apps.set_secrets': {
      const names = ((f.set as { name: string }[] | undefined) ?? []).map((s) => s.name);
      return `set the secrets ${names.join(', ')} of ${app}, sealed to worker ${String(f.worker)}`;
    }
    default:
      return `${pallet}.${name}`;
  }
}

/** `call` in words: `transfer 1 WTE to vx…`. */
export function describeCall(call: Call): string {
  const [pallet, inner] = Object.entries(call)[0] ?? ['', {}];
  const [name, fields] =
    typeof inner === 'string' ? [inner, {}] : (Object.entries(inner as Fields)[0] ?? ['', {}]);
  return words(pallet, name, (fields ?? {}) as Fields);
}
