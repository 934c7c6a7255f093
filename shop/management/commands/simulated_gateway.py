"""Switch the simulated processor's faults for every process sharing its ledger file."""

import datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from shop.gateways import simulated


class Command(BaseCommand):
    help = (
        "Control the simulated payment processor (SIMULATED_GATEWAY_LEDGER_PATH): "
        "`outage --seconds N` / `outage` (until cleared) / `outage --clear`, and `status`."
    )

    def add_arguments(self, parser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        outage = actions.add_parser("outage", help="every charge, refund and lookup fails")
        switch = outage.add_mutually_exclusive_group()
        switch.add_argument("--seconds", type=float, help="end the outage after this long")
        switch.add_argument("--clear", action="store_true", help="end the outage now")
        actions.add_parser("status", help="the outage and the ledger's totals")

    def handle(self, *args, **options) -> None:
        gateway = simulated.SimulatedGateway
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
