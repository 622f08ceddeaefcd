"""What we say: what a check records (its Record and Outcome), the sign-off signed once from them, and each of its
formats."""
