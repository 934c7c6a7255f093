"""The expand/contract rule for migrations, checked (docs/migrations.md).

During a rollout the previous release's code still runs against the migrated schema, so a
migration must not remove or rename what that code uses, nor add a constraint its writes do
not satisfy. Flagged operations:

- RemoveField, DeleteModel, RenameField, RenameModel, AlterModelTable: the old code still
  reads and writes the column or table;
- AddField of a NOT NULL column without `db_default`: Django fills existing rows and then
  drops the default, so the old code's INSERTs (which leave the column out) fail;
- AlterField from NULL to NOT NULL: the old code may still write NULL.

Such a migration passes only as a contract step, when the release before it already stopped
using what it removes: the Migration class says so, naming that release and why:

    class Migration(migrations.Migration):
        contract_after_release = "2027.02: checkout stopped reading Order.legacy_total"

Migrations listed in the baseline file (those that existed when the rule came in) are not
checked again.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.db import migrations, models
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState

BASELINE = Path(settings.BASE_DIR) / "project" / "migration_lint_baseline.txt"
CONTRACT_MARKER = "contract_after_release"

_DROPS = {
    migrations.RemoveField: "removes field {model}.{name}",
    migrations.DeleteModel: "deletes model {name}",
    migrations.RenameField: "renames field {model}.{old_name} to {new_name}",
    migrations.RenameModel: "renames model {old_name} to {new_name}",
    migrations.AlterModelTable: "renames the table of model {name}",
}


@dataclass(frozen=True)
class Problem:
    migration: str  # "app_label.name"
    what: str

    def __str__(self) -> str:
        return (
            f"{self.migration}: {self.what}, which breaks the previous release's code while "
            f"both run during a rollout. Split it into expand and contract steps, or mark the "
            f'contract step with `{CONTRACT_MARKER} = "<release>: <why nothing uses it any '
            f'more>"` (docs/migrations.md).'
        )


def problems_in(migration: migrations.Migration, state: ProjectState) -> list[Problem]:
    """What in `migration`, applied to `state` (the project before it), would break the
    previous release's code. A marked contract step has none."""
    label = f"{migration.app_label}.{migration.name}"
    if str(getattr(migration, CONTRACT_MARKER, "") or "").strip():
        return []
    state = state.clone()
    created = set()  # tables new in this migration: no released code uses them yet
    found = []
    for operation in migration.operations:
        if isinstance(operation, migrations.CreateModel):
            created.add(operation.name_lower)
        elif getattr(operation, "model_name_lower", None) not in created:
            what = _breaking(operation, migration.app_label, state)
            if what:
                found.append(Problem(label, what))
        operation.state_forwards(migration.app_label, state)
    return found


def _breaking(operation, app_label: str, state: ProjectState) -> str | None:
    for kind, message in _DROPS.items():
        if type(operation) is kind:
            return message.format(
                model=getattr(operation, "model_name", ""),
                name=getattr(operation, "name", ""),
                old_name=getattr(operation, "old_name", ""),
                new_name=getattr(operation, "new_name", ""),
            )
    if isinstance(operation, migrations.AddField) and _not_null_without_db_default(operation.field):
        return (
            f"adds NOT NULL field {operation.model_name}.{operation.name} without db_default "
            "(the previous release's inserts leave it out and fail)"
        )
    if isinstance(operation, migrations.AlterField) and not operation.field.null:
        model = state.models.get((app_label, operation.model_name_lower))
        before = model.fields.get(operation.name) if model is not None else None
        if before is not None and before.null and not _has_db_default(operation.field):
            return (
                f"makes field {operation.model_name}.{operation.name} NOT NULL (the previous "
                "release may still write NULL)"
            )
    return None


def _has_db_default(field: models.Field) -> bool:
    return field.db_default is not models.NOT_PROVIDED


def _not_null_without_db_default(field: models.Field) -> bool:
    if field.many_to_many or field.null or field.primary_key:
        return False
    return not _has_db_default(field)


def project_migrations(loader: MigrationLoader) -> list[tuple[str, str]]:
    """The (app_label, name) of every migration of this project's own apps, in graph order."""
    project_dir = Path(settings.BASE_DIR).resolve()
    # A virtualenv may live inside the project folder (.venv): its packages are not ours.
    installed = Path(sys.prefix).resolve()
    own = {
        config.label
        for config in apps.get_app_configs()
        if (path := Path(config.path).resolve()).is_relative_to(project_dir)
        and not path.is_relative_to(installed)
    }
    return [key for key in _graph_order(loader) if key[0] in own]


def _graph_order(loader: MigrationLoader) -> list[tuple[str, str]]:
    ordered: dict[tuple[str, str], None] = {}
    for leaf in sorted(loader.graph.leaf_nodes()):
        ordered.update(dict.fromkeys(loader.graph.forwards_plan(leaf)))
    return list(ordered)


def read_baseline(path: Path = BASELINE) -> set[str]:
    if not path.exists():
        return set()
    lines = (line.strip() for line in path.read_text().splitlines())
    return {line for line in lines if line and not line.startswith("#")}


def write_baseline(loader: MigrationLoader, path: Path = BASELINE) -> int:
    names = sorted(f"{app}.{name}" for app, name in project_migrations(loader))
    header = (
        "# Migrations that existed before the expand/contract check (project.migration_lint):\n"
        "# they are not checked again. Never add a new migration here; mark a contract step\n"
        "# with `contract_after_release` instead (docs/migrations.md).\n"
    )
    path.write_text(header + "".join(f"{name}\n" for name in names))
    return len(names)


def lint(loader: MigrationLoader | None = None, baseline: set[str] | None = None) -> list[Problem]:
    """Every problem in this project's migrations that are not in the baseline."""
    loader = loader or MigrationLoader(None, ignore_no_migrations=True)
    baseline = read_baseline() if baseline is None else baseline
    found = []
    for key in project_migrations(loader):
        if f"{key[0]}.{key[1]}" in baseline:
            continue
        state = loader.project_state(key, at_end=False)
        found += problems_in(loader.graph.nodes[key], state)
    return found
