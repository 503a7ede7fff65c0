//! Chain parameters: fixed at genesis ([`ChainConfig`]) or settable by the root origin
//! ([`Params`]).

use crate::balance::{Balance, UNIT};
use crate::codec_struct;
use crate::ids::{BlockNumber, EpochNumber};
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

/// Economic and operational parameters, changed by the root origin (later: governance).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Params {
    /// Fee every transaction pays at least.
    pub base_fee: Balance,
    /// Fee per byte of the signed transaction, added to the base fee.
    pub fee_per_byte: Balance,
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

    /// The minimum fee of a transaction `size` bytes long; `None` on overflow.
    pub fn minimum_fee(&self, size: usize) -> Option<Balance> {
        self.fee_per_byte
            .checked_mul(u128::try_from(size).ok()?)?
            .checked_add(self.base_fee)
    }

    /// Checks that the parameters make sense together.
    pub fn validate(&self) -> Result<(), String> {
        if self.protocol_fee_bps > 10_000 {
            return Err("protocol_fee_bps must be at most 10000".into());
        }
        if self.proof_window_epochs == 0 {
            return Err("proof_window_epochs must be at least 1".into());
        }
        if self.max_missed_proofs == 0 {
            return Err("max_missed_proofs must be at least 1".into());
        }
        if self.max_placements_per_epoch == 0 {
            return Err("max_placements_per_epoch must be at least 1".into());
        }
        if self.target_block_time_ms == 0 {
            return Err("target_block_time_ms must be at least 1".into());
        }
        if self.required_stake(crate::manifest::MAX_LEVEL).is_none() {
            return Err("min_worker_stake is so large that stakes overflow".into());
        }
        Ok(())
    }
}
