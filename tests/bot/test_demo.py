"""`make demo` is part of what we promise: its tour must keep working."""

import pytest

from bot.sandbox import demo


async def test_the_demo_tour_happens_as_printed(capsys: pytest.CaptureFixture[str]) -> None:
    await demo.run()  # raises DemoFailed naming the step that did not happen
    shown = capsys.readouterr().out
    assert "alice is live at https://alice.ai.example.test" in shown
    assert "Undo Dokploy project: removed project ai-stack-carol" in shown
    assert "alice was removed" in shown
    # her own Approve is refused for not being an approver, without denying her Reject
    assert "only approvers can approve; approvers are: @approvers. You asked for this one: " \
        "you may still withdraw it with Reject" in shown  # fmt: skip
    assert "docker.io/evil/miner:latest is not allowed here" in shown
    assert "This replaces @alice's live stack: image ghcr.io/sst/opencode:latest → " in shown
    assert "(card edited) :no_entry_sign: Rejected by @alice" in shown  # the owner said no
