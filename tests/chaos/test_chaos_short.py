"""The short chaos run inside `make test` (`make chaos` runs the long one)."""

from pathlib import Path

from chaos.run import run_chaos


async def test_deploys_and_teardowns_through_faults_and_kills_keep_every_invariant(
    tmp_path: Path,
) -> None:
    report = await run_chaos(rounds=14, kill_every=5, seed=11, workdir=tmp_path)
    # run_chaos raises AssertionError naming the broken invariant; here, what it went through
    assert report.deploys + report.teardowns == 14
    assert report.kills == 2
    assert sum(report.faults.values()) == 14
    assert sum(report.final.values()) >= report.deploys
    print(report.summary())
