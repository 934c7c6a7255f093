"""Switch the simulated processor's faults for every process sharing its ledger file."""

import datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from shop.gateways import CardInvalid, simulated


class Command(BaseCommand):
    help = (
        "Control the simulated payment processor (SIMULATED_GATEWAY_LEDGER_PATH): "
        "`outage --seconds N` / `outage` (until cleared) / `outage --clear`, `status`, and "
        "`token --number N` (tokenize a test card as a client's card form would)."
    )

    def add_arguments(self, parser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        outage = actions.add_parser("outage", help="every charge, refund and lookup fails")
        switch = outage.add_mutually_exclusive_group()
        switch.add_argument("--seconds", type=float, help="end the outage after this long")
        switch.add_argument("--clear", action="store_true", help="end the outage now")
        actions.add_parser("status", help="the outage and the ledger's totals")
        token = actions.add_parser("token", help="tokenize a card; prints only the token")
        token.add_argument("--number", default="4242424242424242", help="a test card number")
        token.add_argument("--expiry", default="12/39", help="MM/YY")
        token.add_argument("--cvc", default="123")

    def handle(self, *args, **options) -> None:
        gateway = simulated.SimulatedGateway
        if options["action"] == "token":
            self.stdout.write(self._token(options["number"], options["expiry"], options["cvc"]))
            return
        if options["action"] == "outage":
            if options["clear"]:
                gateway.clear_outage()
            elif options["seconds"] is not None:
                if options["seconds"] <= 0:
                    raise CommandError("--seconds must be more than 0.")
                now = datetime.datetime.now(datetime.UTC)
                gateway.set_outage(until=now + datetime.timedelta(seconds=options["seconds"]))
            else:
                gateway.set_outage()
        self.stdout.write(self._status())

    @staticmethod
    def _token(number: str, expiry: str, cvc: str) -> str:
        month, _, year = expiry.partition("/")
        if not (month.isdigit() and year.isdigit()):
            raise CommandError("--expiry must be MM/YY.")
        try:
            card = simulated.SimulatedGateway().tokenize_card(
                number=number, exp_month=int(month), exp_year=int(year), cvc=cvc
            )
        except CardInvalid as exc:
            raise CommandError(exc.message) from exc
        return card.token

    @staticmethod
    def _status() -> str:
        gateway = simulated.SimulatedGateway
        until = gateway.outage_until()
        if until is None:
            outage = "no outage"
        elif until == simulated.FOREVER:
            outage = "outage until cleared"
        else:
            outage = f"outage until {until.isoformat(timespec='seconds')}"
        charges = [entry for entry in gateway.ledger_charges() if entry.status == "captured"]
        refunds = [entry for entry in gateway.ledger_refunds() if entry.status == "succeeded"]
        return (
            f"Simulated processor ({settings.SIMULATED_GATEWAY_LEDGER_PATH}): {outage}; "
            f"{len(charges)} capture(s), {len(refunds)} refund(s), "
            f"net {gateway.ledger_net()}."
        )
