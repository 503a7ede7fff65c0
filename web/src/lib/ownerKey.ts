/**
 * The owner's sealing key: the X25519 key an account publishes on chain
 * (`balances.set_sealing_key`), to which workers seal its logs and failure reports and the
 * page seals the owner's copy of each secret. A signer holding its key in the page uses the one
 * the CLI derives from it, so the CLI and the console open the same logs; an extension never
 * gives its key away, so the page generates one for its account and keeps it in this
 * browser's storage (and lets the owner download it): what was sealed to it opens only here.
 */

import { ApiError, publishedSealingKey } from './api';
import { fromHex, toHex } from './codec';
import { publicKey, randomSecret } from './hpke';
import { ss58DecodeAny } from './keys';
import type { Rpc } from './rpc';
import { endingWords, sendCall } from './send';
import type { Account } from './signer';

/** An owner's sealing secret and its public key. */
export interface OwnerKey {
  secret: Uint8Array;
  public: Uint8Array;
  /** Where it comes from, in words. */
  origin: string;
}

function storageName(genesisHash: string, address: string): string {
  return `wetee-owner-key:${genesisHash}:${toHex(ss58DecodeAny(address))}`;
}

/** The owner key of `account` on the chain `genesisHash`: derived, kept here, or made now. */
export function ownerKey(account: Account, genesisHash: string): OwnerKey {
  const derived = account.derivedOwnerSecret?.();
  if (derived) {
    return { secret: derived, public: publicKey(derived), origin: 'derived from the account key, as the CLI derives it' };
  }
  const name = storageName(genesisHash, account.address);
  const kept = localStorage.getItem(name);
  let secret: Uint8Array;
  if (kept && /^0x[0-9a-f]{64}$/.test(kept)) {
    secret = fromHex(kept);
  } else {
    secret = randomSecret();
    localStorage.setItem(name, toHex(secret));
  }
  return { secret, public: publicKey(secret), origin: "kept in this browser's storage" };
}

/** A file holding `key`, for the owner to keep. */
export function ownerKeyFile(account: Account, genesisHash: string, key: OwnerKey): Blob {
  const document = {
    about: 'a WeTEE owner sealing key: it opens the logs and secrets sealed to this account',
    account: account.address,
    genesis_hash: genesisHash,
    secret: toHex(key.secret),
    public: toHex(key.public),
  };
  return new Blob([JSON.stringify(document, null, 2)], { type: 'application/json' });
}

/**
 * Publishes `account`'s owner key on chain unless the chain has it already, and waits for it
 * to be final: a worker seals an app's output only to a published key. `null` once it is
 * there; else why not, in words.
 */
export async function publishOwnerKey(
  rpc: Rpc,
  account: Account,
  genesisHash: string,
  finalized: number,
): Promise<string | null> {
  const key = ownerKey(account, genesisHash);
  // Proven by the console's server: a node must not get the owner's key replaced. A console
  // told of no chain to trust (it said so) has only the node's word.
  const published = await publishedSealingKey(account.address).catch((error: unknown) => {
    if (error instanceof ApiError && error.status === 503) {
      return rpc.call<string | null>('state_sealingKey', [account.address]);
    }
    throw error;
  });
  if (published && toHex(key.public) === `0x${published}`) {
    return null;
  }
  // An extension's key lives in one browser: replacing the one another browser published
  // would leave what was sealed to it readable only there.
  if (
    published &&
    !account.derivedOwnerSecret &&
    !confirm(
      `${account.name} has published an owner key this browser does not hold (another browser's, or the CLI's). ` +
        'Publish this browser\'s key instead? New logs will then open here only; what was sealed to the other key stays readable only where that key is.',
    )
  ) {
    return null;
  }
  const call = { balances: { set_sealing_key: { key: toHex(key.public) } } };
  const ending = await sendCall(rpc, account, call, genesisHash, finalized, () => {});
  return endingWords('publishing your owner key', ending);
}
