"""The payout provider's statements: imported, matched to payouts, checked."""
