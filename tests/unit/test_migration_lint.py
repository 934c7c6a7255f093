"""The expand/contract check on migrations: a new migration that removes, renames or tightens
what the previous release still uses fails `manage.py lint_migrations` unless it is marked as
the contract step; the migrations that existed before the check are grandfathered."""

import sys
import textwrap

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import migrations, models
from django.db.migrations.state import ModelState, ProjectState

from project import migration_lint


def sample_state() -> ProjectState:
    state = ProjectState()
    state.add_model(
        ModelState(
            "sample",
            "Thing",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("name", models.CharField(max_length=20)),
                ("note", models.CharField(max_length=20, null=True)),
            ],
        )
    )
    return state


def migration(*operations, contract_after_release: str | None = None) -> migrations.Migration:
    attributes = {"operations": list(operations)}
    if contract_after_release is not None:
        attributes["contract_after_release"] = contract_after_release
    return type("Migration", (migrations.Migration,), attributes)("0099_sample", "sample")


def problems(*operations, **marker) -> list[str]:
    found = migration_lint.problems_in(migration(*operations, **marker), sample_state())
    return [problem.what for problem in found]


def test_an_unmarked_remove_field_fails():
    assert problems(migrations.RemoveField("thing", "note")) == ["removes field thing.note"]


def test_a_remove_field_marked_as_the_contract_step_passes():
    assert (
        problems(
            migrations.RemoveField("thing", "note"),
            contract_after_release="2027.02: nothing reads Thing.note since 2027.01",
        )
        == []
    )


def test_an_empty_marker_is_no_marker():
    assert problems(migrations.RemoveField("thing", "note"), contract_after_release=" ") != []


@pytest.mark.parametrize(
    ("operation", "what"),
    [
        (migrations.DeleteModel("Thing"), "deletes model Thing"),
        (migrations.RenameField("thing", "note", "remark"), "renames field thing.note to remark"),
        (migrations.RenameModel("Thing", "Item"), "renames model Thing to Item"),
        (migrations.AlterModelTable("thing", "sample_items"), "renames the table of model thing"),
    ],
)
def test_deleting_or_renaming_fails(operation, what):
    assert problems(operation) == [what]


def test_making_a_nullable_field_not_null_fails_unless_the_database_has_a_default():
    not_null = models.CharField(max_length=20)
    with_db_default = models.CharField(max_length=20, db_default="")

    assert problems(migrations.AlterField("thing", "note", not_null)) == [
        "makes field thing.note NOT NULL (the previous release may still write NULL)"
    ]
    assert problems(migrations.AlterField("thing", "note", with_db_default)) == []
    # Widening a field the old code already fills is an expand step.
    assert problems(migrations.AlterField("thing", "name", models.CharField(max_length=50))) == []


def test_adding_a_not_null_field_needs_a_database_default():
    assert problems(migrations.AddField("thing", "size", models.IntegerField(default=0))) == [
        "adds NOT NULL field thing.size without db_default (the previous release's inserts "
        "leave it out and fail)"
    ]
    assert problems(migrations.AddField("thing", "size", models.IntegerField(db_default=0))) == []
    assert problems(migrations.AddField("thing", "size", models.IntegerField(null=True))) == []


def test_a_table_created_in_the_same_migration_is_nobody_elses_yet():
    assert (
        problems(
            migrations.CreateModel("Part", [("id", models.BigAutoField(primary_key=True))]),
            migrations.AddField(
                "part", "thing", models.ForeignKey("sample.Thing", on_delete=models.CASCADE)
            ),
        )
        == []
    )


def test_the_project_migrations_pass_and_the_new_ones_are_checked():
    call_command("lint_migrations")

    baseline = migration_lint.read_baseline()
    assert "shop.0001_initial" in baseline
    # Migrations written after the rule came in are checked, not grandfathered.
    assert "background.0006_heartbeat" not in baseline


def test_only_the_projects_own_apps_are_checked_even_with_the_virtualenv_inside_it():
    # CI's fresh clone keeps .venv inside the project folder: Django's and Django-Q2's
    # migrations live there too, and are not ours to split (found by a CI run).
    from django.db.migrations.loader import MigrationLoader

    labels = {label for label, _ in migration_lint.project_migrations(MigrationLoader(None))}

    assert labels == {"accounts", "api", "audit", "background", "events", "shop", "webhooks"}


def write_migrations(root, package: str, second: str) -> str:
    folder = root / package / "migrations"
    folder.mkdir(parents=True)
    (root / package / "__init__.py").write_text("")
    (folder / "__init__.py").write_text("")
    (folder / "0001_initial.py").write_text(
        textwrap.dedent(
            """
            from django.db import migrations, models

            class Migration(migrations.Migration):
                initial = True
                operations = [
                    migrations.CreateModel(
                        "Thing",
                        [
                            ("id", models.BigAutoField(primary_key=True)),
                            ("note", models.CharField(max_length=20, null=True)),
                        ],
                    ),
                ]
            """
        )
    )
    (folder / "0002_remove_thing_note.py").write_text(textwrap.dedent(second))
    return f"{package}.migrations"


@pytest.fixture
def sample_migrations(settings, tmp_path, monkeypatch):
    """Migration files on disk for the backoffice app (it has none of its own)."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def use(package: str, second: str) -> None:
        settings.MIGRATION_MODULES = {"backoffice": write_migrations(tmp_path, package, second)}

    yield use
    for name in [name for name in sys.modules if name.startswith("lint_sample_")]:
        del sys.modules[name]


REMOVE_NOTE = """
from django.db import migrations

class Migration(migrations.Migration):
    dependencies = [("backoffice", "0001_initial")]
    {marker}
    operations = [migrations.RemoveField("thing", "note")]
"""


def test_the_command_fails_on_a_new_unmarked_remove_field(sample_migrations):
    sample_migrations("lint_sample_unmarked", REMOVE_NOTE.format(marker=""))

    with pytest.raises(CommandError) as failure:
        call_command("lint_migrations")

    assert "1 migration problem(s)" in str(failure.value)
    assert "backoffice.0002_remove_thing_note: removes field thing.note" in str(failure.value)


def test_the_command_passes_the_marked_contract_step(sample_migrations, capsys):
    marker = 'contract_after_release = "2027.02: nothing reads Thing.note since 2027.01"'
    sample_migrations("lint_sample_marked", REMOVE_NOTE.format(marker=marker))

    call_command("lint_migrations")

    assert "Migrations follow the expand/contract rule." in capsys.readouterr().out
