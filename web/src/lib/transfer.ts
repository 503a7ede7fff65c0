/** Building, signing and sending a transfer from a development account. */

import { sign } from '@scure/sr25519';
import {
  encodeSigned,
  encodeTransaction,
  fromHex,
  signingPayload,
  toHex,
  type Transaction,
} from './codec';
import type { DevAccount } from './keys';
import type { Rpc } from './rpc';

/** How many blocks a transaction stays valid (as the Rust SDK's `DEFAULT_LIFETIME_BLOCKS`). */
const LIFETIME_BLOCKS = 600n;
/** A signature's tag and bytes, after the transaction in its signed encoding. */
const SIGNATURE_BYTES = 65;

/** `state_params`, as far as fees go. */
interface FeeParams {
  params: { base_fee: string; fee_per_byte: string };
}

/**
 * Signs a transfer of `amount` from `from` to `to` for the chain `genesisHash`, at the nonce the
 * node gives and the least fee the chain takes for its size; the signed encoding, in hex.
 */
export async function signTransfer(
  rpc: Rpc,
  from: DevAccount,
  to: string,
  amount: bigint,
  genesisHash: string,
  finalized: number,
): Promise<string> {
  const [nonce, fees] = await Promise.all([
    rpc.call<number>('system_accountNextIndex', [from.address]),
    rpc.call<FeeParams>('state_params'),
  ]);
  const tx: Transaction = {
    signer: from.address,
    nonce: BigInt(nonce),
    fee: 0n,
    expiresAt: BigInt(finalized) + LIFETIME_BLOCKS,
    call: { balances: { transfer: { to, amount: amount.toString() } } },
  };
  // The fee depends on the size, which does not depend on the fee's value.
  const size = encodeTransaction(tx).length + SIGNATURE_BYTES;
  tx.fee = BigInt(fees.params.base_fee) + BigInt(fees.params.fee_per_byte) * BigInt(size);
  const encoded = encodeTransaction(tx);
  const signature = sign(from.secretKey, signingPayload(fromHex(genesisHash), encoded));
  return toHex(encodeSigned(encoded, 'sr25519', signature));
}
