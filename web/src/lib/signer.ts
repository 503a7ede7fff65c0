/**
 * Who signs in the console: a development key (`//Alice`…, public, offered on a development
 * chain only) or a secret phrase the user types (held in the page's memory only), which sign in
 * the page, or an account of a Polkadot browser extension
 * (`window.injectedWeb3`), which signs in the extension and never gives the page its secret.
 * Extensions sign `<Bytes>payload</Bytes>`; the chain accepts that form for what accounts sign
 * (transactions, owner requests), never for a worker's reports.
 */

import { tick } from 'svelte';
import { sign } from '@scure/sr25519';
import { toHex, fromHex, type Scheme } from './codec';
import { accountFromUri, devAccount, ss58Encode, ss58DecodeAny } from './keys';
import { ownerSecretFromAccountKey } from './sealing';
import { signing } from './signing.svelte';

/** A signature and the scheme that made it. */
export interface AccountSignature {
  scheme: Scheme;
  signature: Uint8Array;
}

/** An account the page can sign with. */
export interface Account {
  /** How the page shows it: `//Alice`, or the name the extension gives. */
  name: string;
  /** Its WeTEE (SS58 prefix 2026) address. */
  address: string;
  /** Where its key is. */
  kind: 'dev' | 'phrase' | 'extension';
  /**
   * Signs `payload` as this account; `words` say what it is, shown while an extension asks
   * its user (who sees only hex there).
   */
  sign(payload: Uint8Array, words: string): Promise<AccountSignature>;
  /**
   * The owner's sealing secret derived from the account key, as the CLI derives it; only a
   * signer that holds the key in the page has one (an extension never shows its key).
   */
  derivedOwnerSecret?(): Uint8Array;
}

/** What each kind of signer can do, in words the page shows. */
export const SIGNER_WORDS: Record<Account['kind'], string> = {
  dev: 'a development key: it signs here in the page, and anyone can derive it (development chains only); your logs and secrets open with the owner key derived from it, as the CLI derives it',
  phrase:
    'a secret phrase: this page holds its key in memory only, until you leave or reload; your logs and secrets open with the owner key derived from it, as the CLI derives it',
  extension:
    'an extension account: it signs transactions in your extension, which never gives this page its secret key; your logs and secrets open with an owner key this browser keeps (download it to keep a copy)',
};

/** A development account that signs in the page. */
export function devSigner(name: string): Account {
  const account = devAccount(name);
  return {
    name: account.name,
    address: account.address,
    kind: 'dev',
    sign: async (payload) => ({ scheme: 'sr25519', signature: sign(account.secretKey, payload) }),
    derivedOwnerSecret: () => ownerSecretFromAccountKey(account.secretKey),
  };
}

/** An account of a secret phrase (a BIP39 phrase and an optional path), held in memory only. */
export function phraseSigner(uri: string): Account {
  const account = accountFromUri(uri);
  return {
    name: `${account.address.slice(0, 8)}… (secret phrase)`,
    address: account.address,
    kind: 'phrase',
    sign: async (payload) => ({ scheme: 'sr25519', signature: sign(account.secretKey, payload) }),
    derivedOwnerSecret: () => ownerSecretFromAccountKey(account.secretKey),
  };
}

/** The part of an extension (`@polkadot/extension-inject`) the console uses. */
interface Injected {
  accounts: { get(): Promise<{ address: string; name?: string; type?: string }[]> };
  signer: {
    signRaw?(raw: { address: string; data: string; type: 'bytes' }): Promise<{ signature: string }>;
  };
}

declare global {
  interface Window {
    injectedWeb3?: Record<string, { enable(origin: string): Promise<Injected>; version?: string }>;
  }
}

/** An extension that refused or failed to sign, with its words. */
export class RefusedToSign extends Error {}

/** The extensions' accounts this page may use, and what kept others out, in words. */
export async function extensionAccounts(): Promise<{ accounts: Account[]; problems: string[] }> {
  const extensions = Object.entries(window.injectedWeb3 ?? {});
  const accounts: Account[] = [];
  const problems: string[] = [];
  if (extensions.length === 0) {
    problems.push('no Polkadot browser extension is installed in this browser');
  }
  for (const [source, extension] of extensions) {
    let injected: Injected;
    try {
      injected = await extension.enable('WeTEE console');
    } catch (error) {
      problems.push(`${source} did not let the console in: ${(error as Error).message}`);
      continue;
    }
    const signRaw = injected.signer.signRaw;
    if (!signRaw) {
      problems.push(`${source} cannot sign raw payloads`);
      continue;
    }
    for (const listed of await injected.accounts.get()) {
      const scheme = listed.type ?? 'sr25519';
      if (scheme !== 'sr25519' && scheme !== 'ed25519') {
        problems.push(`${listed.name ?? listed.address} is an ${scheme} account: WeTEE accounts are sr25519 or ed25519`);
        continue;
      }
      let publicKey: Uint8Array;
      try {
        publicKey = ss58DecodeAny(listed.address);
      } catch (error) {
        problems.push((error as Error).message);
        continue;
      }
      accounts.push({
        name: `${listed.name ?? 'account'} (${source})`,
        address: ss58Encode(publicKey),
        kind: 'extension',
        async sign(payload, words) {
          let answer: { signature: string };
          signing.words = words;
          // Shown before the extension's window opens over the page.
          await tick();
          try {
            answer = await signRaw({ address: listed.address, data: toHex(payload), type: 'bytes' });
          } catch (error) {
            throw new RefusedToSign(`${source} did not sign: ${(error as Error).message}`);
          } finally {
            signing.words = null;
          }
          const signature = fromHex(answer.signature);
          if (signature.length !== 64) {
            throw new RefusedToSign(`${source} gave a signature of ${signature.length} bytes, not 64`);
          }
          return { scheme, signature };
        },
      });
    }
  }
  return { accounts, problems };
}
