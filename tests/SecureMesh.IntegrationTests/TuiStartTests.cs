namespace SecureMesh.IntegrationTests;

/// <summary>The first start of <c>securemesh tui</c> in a real terminal: it says what it is doing before the screen appears.</summary>
public sealed class TuiStartTests() : TempFolderTest("securemesh-tuistart-")
{
    [Fact]
    public async Task Tui_says_it_is_starting_the_node_before_asking_for_the_passphrase_and_then_shows_the_node_running()
    {
        Assert.True(TmuxSession.IsAvailable, "tmux is needed for this test ('./test.sh' installs it)");
        var home = Path.Combine(Root, "home");
        SecureMesh.Core.Identity.IdentityStore.EnsureDataDirectory(home);
        using (var identity = SecureMesh.Core.Identity.NodeIdentity.Generate())
        {
            SecureMesh.Core.Identity.IdentityStore.Save(home, identity, "secret words", force: false);
        }
        await OkAsync(home, "config", "set", "listen", "127.0.0.1:0");
        await OkAsync(home, "config", "set", "discovery", "off");

        using var tmux = TmuxSession.StartSecureMesh(["--home", home, "tui"], 120, 30);
        var screen = tmux.WaitForText("Passphrase:", TimeSpan.FromSeconds(30));
        Assert.Contains($"securemesh: starting the node in {home}…", screen, StringComparison.Ordinal);
        tmux.SendKeys("secret words", literal: true);
        tmux.SendKeys("Enter");
        tmux.WaitForText("node running", TimeSpan.FromSeconds(30));
        tmux.SendKeys("C-q");
        Assert.Equal(0, tmux.WaitForExit());
    }

    [Fact]
    public async Task The_log_view_shows_an_entry_added_while_it_is_open_and_the_check_says_when_it_ran()
    {
        Assert.True(TmuxSession.IsAvailable, "tmux is needed for this test ('./test.sh' installs it)");
        var home = Path.Combine(Root, "log");
        await OkAsync(home, "init");
        await OkAsync(home, "config", "set", "listen", "127.0.0.1:0");
        await OkAsync(home, "config", "set", "discovery", "off");

        using var tmux = TmuxSession.StartSecureMesh(["--home", home, "tui"], 120, 30);
        tmux.WaitForText("node running", TimeSpan.FromSeconds(30));
        tmux.SendKeys("F6");
        tmux.WaitForText("[F6 Log]");
        using var stranger = SecureMesh.Core.Identity.NodeIdentity.Generate();
        // Through the running node's control socket, while the Log view is on screen.
        await OkAsync(home, "peers", "add", stranger.PeerId.Text, "--name", "latecomer");
        tmux.WaitForText("peer.added", TimeSpan.FromSeconds(15));
        tmux.SendKeys("v");
        var screen = tmux.WaitForText("Checked ", TimeSpan.FromSeconds(15));
        Assert.Matches("Checked [0-9]{2}:[0-9]{2}:[0-9]{2}: OK", screen);
        tmux.SendKeys("Enter");
        // Ctrl+Q quits only from the main screen: wait for the message box to close.
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (tmux.Capture().Contains("Audit log", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(100);
        }
        tmux.SendKeys("C-q");
        Assert.Equal(0, tmux.WaitForExit());
    }
}
