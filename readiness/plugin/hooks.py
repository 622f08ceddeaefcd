"""The pytest plugin's entry hooks: options, the run's start, each check's outcome decided once.

What the run gathers, signs, writes and exits with is readiness.plugin.reporter's; pytest-html's rows are
readiness.plugin.html_rows'.
"""

from __future__ import annotations

import pytest

from readiness.plugin import markers, options, outcomes
from readiness.plugin.html_rows import HtmlSignOff
from readiness.plugin.reporter import SignOffReporter
from readiness.postgres import interrupt
from readiness.report.tally import Tally
from readiness.schema.statements import has_byte_order_mark, meta_commands
from readiness.verdicts import REFUSED


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Options checked, reports placed, the sign-off started and its reporters registered."""
    if options.is_readiness_run(config):
        options.run_again_with_the_suites_configuration(config)
    interrupt.install()
    options.validate(config)
    options.place_reports(config)
    run = outcomes.run_record(config)
    skipped = meta_commands(config.option.migration) + meta_commands(config.option.rollback)
    if skipped:
        run.note("psql meta-commands skipped (they change nothing in the database)", "; ".join(skipped))
    marked = [str(path) for path in (config.option.migration, config.option.rollback) if has_byte_order_mark(path)]
    if marked:
        run.note("files starting with a UTF-8 byte-order mark (read without it, as psql does)", ", ".join(marked))
    reporter = SignOffReporter(config, Tally(config.option.migration, config.option.rollback,
                                             decisions=config.option.decisions))  # fmt: skip
    config.pluginmanager.register(reporter, "readiness-signoff")
    if config.pluginmanager.hasplugin("html"):
        config.pluginmanager.register(HtmlSignOff(reporter), "readiness-html")


@pytest.hookimpl(wrapper=True)
def pytest_sessionstart(session: pytest.Session):  # type: ignore[no-untyped-def]
    """An interrupt while xdist starts its workers kills them mid-handshake, and xdist raises what it saw
    (EOFError from execnet): that is the interrupt, exit 2, not an internal error."""
    try:
        return (yield)
    except Exception as error:  # the signal's handler runs by the time this line does, if it came
        if interrupt.received():
            raise KeyboardInterrupt(f"signal {interrupt.received()} while the session started") from error
        raise


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):  # type: ignore[no-untyped-def]
    refused = REFUSED.set(outcomes.record_of(item).refusals)
    try:
        outcome = yield
    finally:
        REFUSED.reset(refused)
    if interrupt.received():  # its KeyboardInterrupt was swallowed by a third party during this test
        raise KeyboardInterrupt(f"signal {interrupt.received()}, received during {item.nodeid}")
    return outcome


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every readiness check names the requirement it enforces, and its markers' arguments are known ones."""
    markers.validate(items)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """The one place a check's outcome is decided (readiness.plugin.outcomes), carried on its report as a value."""
    report = (yield).get_result()
    report.readiness = outcomes.decide(item, call, report).as_json()
