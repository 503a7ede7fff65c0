//! The runtime's economics, step by step: the worked example of `docs/runtime.md`, computed by
//! the real runtime on an in-memory chain.
//!
//! Run with `cargo run -p wetee-runtime --features testing --example walkthrough`.

use wetee_runtime::testing::worked_example;

fn main() {
    let example = worked_example();
    println!(
        "An app at {} per epoch, deposit {}.",
        example.price_per_epoch, example.deposit
    );
    println!(
        "The worker proves every epoch except epoch 4; the owner stops the app after epoch 10.\n"
    );
    println!(
        "{:>5}  {:>8}  {:>16}  {:>16}  {:>16}  {:>16}",
        "epoch", "proven", "owner paid", "deposit left", "worker earnings", "protocol fees"
    );
    for e in &example.epochs {
        println!(
            "{:>5}  {:>8}  {:>16}  {:>16}  {:>16}  {:>16}",
            e.epoch,
            if e.reported { "yes" } else { "missed" },
            e.paid_by_owner.to_string(),
            e.deposit_left.to_string(),
            e.worker_earnings.to_string(),
            e.protocol_fees.to_string()
        );
    }
    println!();
    println!("refunded at stop:           {}", example.refund_at_stop);
    println!("held at stop for epoch 10:  {}", example.held_at_stop);
    println!("owner paid in total:        {}", example.owner_paid);
    println!("worker earned:              {}", example.worker_earned);
    println!("treasury protocol fees:     {}", example.treasury_fees);
    println!(
        "owner funds still reserved: {}",
        example.owner_reserved_after
    );
}
