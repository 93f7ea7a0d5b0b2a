namespace SecureMesh.IntegrationTests;

/// <summary>The pseudo-terminal helper works; the full TUI-over-a-real-node test is the integrator's to add (see <see cref="TmuxSession"/>).</summary>
public sealed class TmuxSessionTests
{
    [Fact]
    public void Tui_in_a_real_terminal_without_the_node_service_says_so_and_exits_1()
    {
        if (!TmuxSession.IsAvailable)
        {
            return;
        }
        var home = Directory.CreateTempSubdirectory("securemesh-tmux-home-").FullName;
        try
        {
            using var tmux = TmuxSession.StartSecureMesh(["--home", home, "tui"]);
            Assert.Equal(1, tmux.WaitForExit());
            Assert.Contains("error: the terminal UI needs the node service", tmux.Capture(), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(home, recursive: true);
        }
    }
}
