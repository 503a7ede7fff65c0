//! Chain parameters: fixed at genesis ([`ChainConfig`]) or settable by the root origin
//! ([`Params`]).

use crate::balance::{Balance, UNIT};
use crate::codec_struct;
use crate::ids::{BlockNumber, EpochNumber};
use crate::weight::{FeeQuote, Weight};
use serde::{Deserialize, Serialize};

/// Parameters that can never change after genesis: epoch numbering depends on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ChainConfig {
    /// Blocks per epoch.
    pub epoch_length: u64,
}
codec_struct!(ChainConfig { epoch_length });

impl ChainConfig {
    /// The epoch containing `height`.
    pub fn epoch_of(&self, height: BlockNumber) -> EpochNumber {
        height.checked_div(self.epoch_length).unwrap_or_default()
    }

    /// The first height of `epoch`, saturating at the end of time.
    pub fn epoch_start(&self, epoch: EpochNumber) -> BlockNumber {
        epoch.saturating_mul(self.epoch_length)
    }

    /// Whether `height` is the last block of its epoch.
    pub fn is_epoch_end(&self, height: BlockNumber) -> bool {
        self.epoch_length != 0 && height.saturating_add(1).is_multiple_of(self.epoch_length)
    }
}

/// The range each bounded parameter must lie in.
pub mod bounds {
    use std::ops::RangeInclusive;

    /// Share of worker payments to the treasury, in basis points: at most all of it.
    pub const PROTOCOL_FEE_BPS: RangeInclusive<u16> = 0..=10_000;
    /// Epochs a work report stays acceptable.
    pub const PROOF_WINDOW_EPOCHS: RangeInclusive<u32> = 1..=16;
    /// Unproven epochs before a worker is suspended.
    pub const MAX_MISSED_PROOFS: RangeInclusive<u32> = 1..=64;
    /// Epochs an app runs on an exhausted deposit.
    pub const GRACE_EPOCHS: RangeInclusive<u32> = 0..=64;
    /// Placements retried at an epoch's end: bounds that block's cost.
    pub const MAX_PLACEMENTS_PER_EPOCH: RangeInclusive<u32> = 1..=4_096;
    /// Nominal block time: fast enough to be a chain, slow enough that a few validators on
    /// ordinary machines can keep it.
    pub const TARGET_BLOCK_TIME_MS: RangeInclusive<u64> = 20..=10_000;
    /// Blocks before unstaked funds can be withdrawn: about a year at most at one-second blocks.
    pub const UNBONDING_BLOCKS: RangeInclusive<u64> = 1..=31_536_000;
    /// Weight one block may have, its hooks included, in nanoseconds of execution on the
    /// reference machine: room at least for the heaviest single transaction besides the hooks'
    /// share (a full work report with SEV-SNP evidence; the runtime's tests check its table
    /// against this), at most what a validator can verify well inside a leader timeout.
    pub const MAX_BLOCK_WEIGHT: RangeInclusive<u64> = 100_000_000..=2_000_000_000;
}

/// Economic and operational parameters, changed by the root origin (later: governance).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Params {
    /// Fee every transaction pays at least.
    pub base_fee: Balance,
    /// Fee per byte of the signed transaction, added to the base fee.
    pub fee_per_byte: Balance,
    /// Fee per unit of weight (a nanosecond of execution on the reference machine), added too.
    pub fee_per_weight: Balance,
    /// Most weight the transactions of one block may have together.
    pub max_block_weight: Weight,
    /// Share of every payment to a worker that goes to the treasury, in basis points.
    pub protocol_fee_bps: u16,
    /// Stake a level-0 worker needs to be started; a level-`n` worker needs `(n + 1)` times it.
    pub min_worker_stake: Balance,
    /// Blocks between an unstake and the moment the amount can be withdrawn.
    pub unbonding_blocks: u64,
    /// Epochs after the end of epoch `e` during which its work report is accepted.
    pub proof_window_epochs: u32,
    /// Consecutive unproven epochs after which a worker is suspended and its apps move.
    pub max_missed_proofs: u32,
    /// Epochs an app keeps running once its deposit cannot pay for the next epoch.
    pub grace_epochs: u32,
    /// Smallest deposit an app can be created with.
    pub min_app_deposit: Balance,
    /// Smallest deposit a task can be created with.
    pub min_task_deposit: Balance,
    /// Bond a complaint against a worker locks; returned if upheld.
    pub complaint_bond: Balance,
    /// Paid to the treasury from a task's deposit for every run it starts, so that runs are
    /// never free even on a worker that charges nothing.
    pub run_fee: Balance,
    /// Placements attempted from the pending queue at each epoch end (bounds block cost).
    pub max_placements_per_epoch: u32,
    /// Nominal block time, which converts task run durations into fractions of an epoch.
    pub target_block_time_ms: u64,
}
codec_struct!(Params {
    base_fee,
    fee_per_byte,
    fee_per_weight,
    max_block_weight,
    protocol_fee_bps,
    min_worker_stake,
    unbonding_blocks,
    proof_window_epochs,
    max_missed_proofs,
    grace_epochs,
    min_app_deposit,
    min_task_deposit,
    complaint_bond,
    run_fee,
    max_placements_per_epoch,
    target_block_time_ms
});

impl Params {
    /// Parameters for a local development chain: cheap and fast.
    pub fn dev() -> Params {
        Params {
            base_fee: Balance(UNIT / 1000),
            fee_per_byte: Balance(UNIT / 1_000_000),
            // 0.001 WTE per millisecond of work: a transfer pays about 0.00006 WTE for it,
            // SEV-SNP evidence about 0.004 WTE.
            fee_per_weight: Balance(UNIT / 1_000_000_000),
            // 150 ms, the leader's build budget: about 2,500 transfers a block.
            max_block_weight: Weight::from_millis(150),
            protocol_fee_bps: 500,
            min_worker_stake: Balance(100 * UNIT),
            unbonding_blocks: 20,
            proof_window_epochs: 1,
            max_missed_proofs: 2,
            grace_epochs: 1,
            min_app_deposit: Balance(UNIT),
            min_task_deposit: Balance(UNIT / 10),
            complaint_bond: Balance(10 * UNIT),
            run_fee: Balance(UNIT / 1000),
            max_placements_per_epoch: 256,
            target_block_time_ms: 1000,
        }
    }

    /// Parameters for a production chain: real stakes, long unbonding.
    pub fn production() -> Params {
        Params {
            min_worker_stake: Balance(10_000 * UNIT),
            unbonding_blocks: 7 * 24 * 3600,
            proof_window_epochs: 2,
            max_missed_proofs: 3,
            grace_epochs: 6,
            complaint_bond: Balance(100 * UNIT),
            ..Params::dev()
        }
    }

    /// Stake a worker of `level` needs; `None` on overflow.
    pub fn required_stake(&self, level: u8) -> Option<Balance> {
        self.min_worker_stake
            .checked_mul(u128::from(level).checked_add(1)?)
    }

    /// The minimum fee of a transaction `size` bytes long of `weight`; `None` on overflow.
    pub fn minimum_fee(&self, size: usize, weight: Weight) -> Option<Balance> {
        Some(self.fee_quote(size, weight)?.minimum_fee)
    }

    /// The minimum fee of a transaction `size` bytes long of `weight`, part by part; `None`
    /// on overflow.
    pub fn fee_quote(&self, size: usize, weight: Weight) -> Option<FeeQuote> {
        let for_bytes = self.fee_per_byte.checked_mul(u128::try_from(size).ok()?)?;
        let for_weight = self.fee_per_weight.checked_mul(u128::from(weight.0))?;
        Some(FeeQuote {
            weight,
            size: u32::try_from(size).ok()?,
            base: self.base_fee,
            for_weight,
            for_bytes,
            minimum_fee: self
                .base_fee
                .checked_add(for_bytes)?
                .checked_add(for_weight)?,
        })
    }

    /// Checks every parameter against its bound ([`bounds`]) and that they make sense
    /// together. The message names the field, its value and what is allowed.
    pub fn validate(&self) -> Result<(), String> {
        fn within<T: PartialOrd + std::fmt::Display>(
            field: &str,
            value: T,
            range: std::ops::RangeInclusive<T>,
        ) -> Result<(), String> {
            if range.contains(&value) {
                Ok(())
            } else {
                Err(format!(
                    "{field} is {value}; it must be from {} to {}",
                    range.start(),
                    range.end()
                ))
            }
        }
        fn positive(field: &str, value: Balance) -> Result<(), String> {
            if value == Balance::ZERO {
                Err(format!("{field} must be more than 0"))
            } else {
                Ok(())
            }
        }
        within(
            "protocol_fee_bps",
            self.protocol_fee_bps,
            bounds::PROTOCOL_FEE_BPS,
        )?;
        within(
            "proof_window_epochs",
            self.proof_window_epochs,
            bounds::PROOF_WINDOW_EPOCHS,
        )?;
        within(
            "max_missed_proofs",
            self.max_missed_proofs,
            bounds::MAX_MISSED_PROOFS,
        )?;
        within("grace_epochs", self.grace_epochs, bounds::GRACE_EPOCHS)?;
        within(
            "max_placements_per_epoch",
            self.max_placements_per_epoch,
            bounds::MAX_PLACEMENTS_PER_EPOCH,
        )?;
        within(
            "target_block_time_ms",
            self.target_block_time_ms,
            bounds::TARGET_BLOCK_TIME_MS,
        )?;
        within(
            "unbonding_blocks",
            self.unbonding_blocks,
            bounds::UNBONDING_BLOCKS,
        )?;
        within(
            "max_block_weight",
            self.max_block_weight.0,
            bounds::MAX_BLOCK_WEIGHT,
        )?;
        // Free transactions, deposits, bonds or runs would make spam and squatting free.
        positive("base_fee", self.base_fee)?;
        positive("fee_per_byte", self.fee_per_byte)?;
        positive("fee_per_weight", self.fee_per_weight)?;
        positive("min_worker_stake", self.min_worker_stake)?;
        positive("min_app_deposit", self.min_app_deposit)?;
        positive("min_task_deposit", self.min_task_deposit)?;
        positive("complaint_bond", self.complaint_bond)?;
        positive("run_fee", self.run_fee)?;
        if self
            .minimum_fee(
                crate::transaction::MAX_TRANSACTION_BYTES,
                self.max_block_weight,
            )
            .is_none()
        {
            return Err(
                "base_fee, fee_per_byte and fee_per_weight are so large that fees overflow".into(),
            );
        }
        if self.required_stake(crate::manifest::MAX_LEVEL).is_none() {
            return Err("min_worker_stake is so large that stakes overflow".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Params::dev()` with one field changed by `edit`: accepted or refused.
    fn check(edit: impl FnOnce(&mut Params)) -> Result<(), String> {
        let mut params = Params::dev();
        edit(&mut params);
        params.validate()
    }

    #[test]
    fn every_bounded_field_is_accepted_at_its_bounds_and_refused_past_them() {
        macro_rules! bounded {
            ($field:ident, $range:expr) => {{
                let range = $range;
                assert_eq!(
                    check(|p| p.$field = *range.start()),
                    Ok(()),
                    stringify!($field)
                );
                assert_eq!(
                    check(|p| p.$field = *range.end()),
                    Ok(()),
                    stringify!($field)
                );
                if *range.start() > 0 {
                    let refused = check(|p| p.$field = *range.start() - 1).unwrap_err();
                    assert!(refused.starts_with(stringify!($field)), "{refused}");
                }
                let refused = check(|p| p.$field = *range.end() + 1).unwrap_err();
                assert!(
                    refused.contains(&format!(
                        "must be from {} to {}",
                        range.start(),
                        range.end()
                    )),
                    "{refused}"
                );
            }};
        }
        bounded!(protocol_fee_bps, bounds::PROTOCOL_FEE_BPS);
        bounded!(proof_window_epochs, bounds::PROOF_WINDOW_EPOCHS);
        bounded!(max_missed_proofs, bounds::MAX_MISSED_PROOFS);
        bounded!(grace_epochs, bounds::GRACE_EPOCHS);
        bounded!(max_placements_per_epoch, bounds::MAX_PLACEMENTS_PER_EPOCH);
        bounded!(target_block_time_ms, bounds::TARGET_BLOCK_TIME_MS);
        bounded!(unbonding_blocks, bounds::UNBONDING_BLOCKS);
        let weights = bounds::MAX_BLOCK_WEIGHT;
        for accepted in [*weights.start(), *weights.end()] {
            assert_eq!(check(|p| p.max_block_weight = Weight(accepted)), Ok(()));
        }
        for refused in [*weights.start() - 1, *weights.end() + 1] {
            let said = check(|p| p.max_block_weight = Weight(refused)).unwrap_err();
            assert!(said.starts_with("max_block_weight is"), "{said}");
        }
    }

    #[test]
    fn the_fee_is_base_plus_weight_plus_bytes() {
        let params = Params::dev();
        let quote = params.fee_quote(200, Weight::from_micros(40)).unwrap();
        assert_eq!(quote.base, params.base_fee);
        assert_eq!(quote.for_bytes, Balance(params.fee_per_byte.0 * 200));
        assert_eq!(quote.for_weight, Balance(params.fee_per_weight.0 * 40_000));
        assert_eq!(
            quote.minimum_fee,
            Balance(quote.base.0 + quote.for_bytes.0 + quote.for_weight.0)
        );
        assert_eq!(
            params.minimum_fee(200, Weight::from_micros(40)),
            Some(quote.minimum_fee)
        );
        // Heavier costs more at the same size.
        assert!(params.minimum_fee(200, Weight::from_millis(3)).unwrap() > quote.minimum_fee);
        let mut huge = params;
        huge.fee_per_weight = Balance(u128::MAX / 2);
        assert_eq!(huge.minimum_fee(1, Weight(3)), None);
    }

    #[test]
    fn fees_deposits_and_bonds_must_be_positive_and_must_not_overflow() {
        macro_rules! positive {
            ($field:ident) => {{
                assert_eq!(check(|p| p.$field = Balance(1)), Ok(()), stringify!($field));
                assert_eq!(
                    check(|p| p.$field = Balance::ZERO),
                    Err(format!("{} must be more than 0", stringify!($field)))
                );
            }};
        }
        positive!(base_fee);
        positive!(fee_per_byte);
        positive!(fee_per_weight);
        positive!(min_worker_stake);
        positive!(min_app_deposit);
        positive!(min_task_deposit);
        positive!(complaint_bond);
        positive!(run_fee);
        assert!(
            check(|p| p.fee_per_byte = Balance(u128::MAX / 1024))
                .unwrap_err()
                .contains("fees overflow")
        );
        assert!(
            check(|p| p.min_worker_stake = Balance(u128::MAX / 2))
                .unwrap_err()
                .contains("stakes overflow")
        );
        assert_eq!(Params::production().validate(), Ok(()));
    }
}
