// A Polkadot browser extension stand-in for the console's tests, injected into the page
// before it loads: `window.injectedWeb3` with one sr25519 account (`//Bob`, listed under
// Polkadot's generic prefix as a real extension would), signing `<Bytes>`-wrapped payloads
// with @polkadot/keyring as real extensions do. `window.standInRefuses = true` makes it refuse
// like a user pressing Cancel. `window.standInSaw` keeps what the page's notice said while the
// last signature was asked for.

import { Keyring } from '@polkadot/keyring';
import { hexToU8a, u8aToHex, u8aWrapBytes } from '@polkadot/util';
import { cryptoWaitReady } from '@polkadot/util-crypto';

const pair = cryptoWaitReady().then(() =>
  new Keyring({ type: 'sr25519', ss58Format: 42 }).addFromUri('//Bob'),
);

window.injectedWeb3 = {
  'stand-in': {
    version: '0.0.0',
    async enable() {
      const bob = await pair;
      return {
        accounts: {
          get: async () => [{ address: bob.address, name: 'Bob', type: 'sr25519' }],
        },
        signer: {
          async signRaw({ address, data, type }) {
            if (window.standInRefuses) {
              throw new Error('Cancelled');
            }
            if (address !== bob.address || type !== 'bytes') {
              throw new Error('not an account of this extension');
            }
            // What the page says it asks for, while the extension asks its user.
            window.standInSaw = document.querySelector('[data-testid="signing-notice"]')?.textContent ?? null;
            return { id: 1, signature: u8aToHex(bob.sign(u8aWrapBytes(hexToU8a(data)))) };
          },
        },
      };
    },
  },
};
