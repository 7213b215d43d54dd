"""How each business event is booked (catalog 3.3, 3.5, 3.6): plan ids, postings, deposit moves.

The processors book with these functions and the audit checks recorded plans against them, so
"what the ledger should say about an order" is written exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .money import OrderPricing

REVENUE: Final = "platform:revenue"


def client_account(client_id: str) -> str:
    return f"client:{client_id}"


def trader_account(trader_id: str) -> str:
    return f"trader:{trader_id}"


def external_account(currency: str) -> str:
    return f"external:{currency}"


def order_plan_id(order_id: str, attempt: int) -> str:
    return f"order:{order_id}:{attempt}"


def reverse_plan_id(order_id: str) -> str:
    return f"reverse:order:{order_id}"


def payout_plan_id(payout_id: str) -> str:
    return f"payout:{payout_id}"


def revert_plan_id(plan_id: str) -> str:
    return f"revert:{plan_id}"


def topup_plan_id(topup_id: str) -> str:
    return f"topup:{topup_id}"


@dataclass(frozen=True, slots=True)
class Move:
    """One posting to book: ``amount`` of ``currency`` from one account to another."""

    from_: str
    to: str
    amount: int
    currency: str
    description: str

    def swapped(self) -> Move:
        return Move(
            self.to, self.from_, self.amount, self.currency, f"reversal of: {self.description}"
        )

    def as_payload(self) -> dict[str, object]:
        return {
            "from": self.from_,
            "to": self.to,
            "amount": self.amount,
            "currency": self.currency,
            "description": self.description,
        }


def _nonzero(moves: list[Move]) -> list[Move]:
    """A posting must move a positive amount, so a zero leg (fee equal to reward) is not booked."""
    return [m for m in moves if m.amount != 0]


def order_moves(
    direction: str, client_id: str, trader_id: str, pricing: OrderPricing, currency: str
) -> list[Move]:
    """The postings of one assignment attempt's plan, as the catalog writes them."""
    c, t = client_account(client_id), trader_account(trader_id)
    if direction == "payin":
        return _nonzero(
            [
                Move(
                    t,
                    c,
                    pricing.settlement_amount - pricing.platform_fee,
                    currency,
                    "payin: settlement net of platform fee",
                ),
                Move(
                    t,
                    REVENUE,
                    pricing.platform_net,
                    currency,
                    "payin: platform fee net of trader reward",
                ),
            ]
        )
    return _nonzero(
        [
            Move(c, t, pricing.payout_credit, currency, "payout: settlement plus trader reward"),
            Move(
                c,
                REVENUE,
                pricing.platform_net,
                currency,
                "payout: platform fee net of trader reward",
            ),
        ]
    )


def trader_hold_at_assignment(direction: str, pricing: OrderPricing) -> int | None:
    """A payin holds ``settlement - reward`` of the trader's deposit; a payout holds nothing."""
    return pricing.payin_hold if direction == "payin" else None


def trader_credit_at_completion(direction: str, pricing: OrderPricing) -> int | None:
    """A payout credits ``settlement + reward`` to the deposit at completion; a payin captures its hold."""
    return pricing.payout_credit if direction == "payout" else None


def reversal_deposit_move(direction: str, pricing: OrderPricing) -> tuple[str, int]:
    """A reversed dispute on the trader stream: ``(kind, amount)`` with ref ``reverse:order:<id>``."""
    if direction == "payin":
        return "trader.deposit_credited", pricing.payin_hold
    return "trader.deposit_debited", pricing.payout_credit


def payout_moves(owner: str, amount: int, fee: int, currency: str) -> list[Move]:
    """A withdrawal: the amount leaves the platform, the fee goes to revenue."""
    return _nonzero(
        [
            Move(owner, external_account(currency), amount, currency, "withdrawal"),
            Move(owner, REVENUE, fee, currency, "withdrawal fee"),
        ]
    )


def payout_revert_moves(owner: str, amount: int, fee: int, currency: str) -> list[Move]:
    """Cancel after confirm: the withdrawal's postings swapped, held and committed at once."""
    return _nonzero(
        [
            Move(external_account(currency), owner, amount, currency, "withdrawal reverted"),
            Move(REVENUE, owner, fee, currency, "withdrawal fee reverted"),
        ]
    )


def topup_moves(account: str, amount: int, currency: str) -> list[Move]:
    """Money entering the platform onto a client balance or a trader deposit."""
    return [Move(external_account(currency), account, amount, currency, "top-up")]
