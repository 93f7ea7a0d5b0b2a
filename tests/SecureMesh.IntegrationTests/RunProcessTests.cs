using SecureMesh.Node;
using SecureMesh.Storage;

namespace SecureMesh.IntegrationTests;

/// <summary><c>securemesh run</c> as a real process: signals, the single-instance lock, the control socket.</summary>
public sealed class RunProcessTests : IDisposable
{
    private const int SigTerm = 15;
    private const int SigKill = 9;
    private static readonly TimeSpan Startup = TimeSpan.FromSeconds(30);

    private readonly string _root = Directory.CreateTempSubdirectory("securemesh-run-").FullName;

    private string Home => Path.Combine(_root, "home");

    [Fact]
    public async Task SIGTERM_stops_the_node_cleanly_and_releases_the_lock_and_the_socket()
    {
        using (var node = NodeProcess.Start(Home, null, "run", "--listen", "127.0.0.1:0"))
        {
            await node.WaitForLineAsync("control socket", Startup);
            var status = Cli.Json("--home", Home, "status");
            Assert.True(status.GetProperty("running").GetBoolean());
            Assert.True(NodeLock.IsHeld(Home));
            Assert.True(File.Exists(Path.Combine(Home, "control.sock")));

            // Discovery stops at once in the running node.
            var off = Cli.Run("--home", Home, "config", "set", "discovery", "off");
            Assert.True(off.ExitCode == 0, off.Err);
            Assert.Contains("discovery = off (discovery stopped)", off.Out, StringComparison.Ordinal);
            Assert.Equal("off", Cli.Json("--home", Home, "status").GetProperty("discovery").GetString());
            await node.WaitForLineAsync("LAN discovery off", TimeSpan.FromSeconds(5));

            node.Signal(SigTerm);
            Assert.Equal(0, await node.WaitForExitAsync(TimeSpan.FromSeconds(20)));
            Assert.Contains("stopped", node.Output, StringComparison.Ordinal);
        }
        Assert.False(NodeLock.IsHeld(Home));
        Assert.False(File.Exists(Path.Combine(Home, "control.sock")));
        using (var db = SecureMeshDatabase.Open(Home))
        {
            Assert.Equal("ok", db.IntegrityCheck());
        }
        Assert.False(Cli.Json("--home", Home, "status").GetProperty("running").GetBoolean());

        // The lock and the socket are free: a second run starts.
        using var again = NodeProcess.Start(Home, null, "run", "--listen", "127.0.0.1:0");
        await again.WaitForLineAsync("control socket", Startup);
        Assert.True(Cli.Json("--home", Home, "status").GetProperty("running").GetBoolean());
        again.Signal(SigTerm);
        Assert.Equal(0, await again.WaitForExitAsync(TimeSpan.FromSeconds(20)));
    }

    [Fact]
    public async Task A_second_run_on_the_same_home_is_refused_and_a_crash_leaves_nothing_that_blocks_the_next_start()
    {
        using (var first = NodeProcess.Start(Home, null, "run", "--listen", "127.0.0.1:0"))
        {
            await first.WaitForLineAsync("control socket", Startup);
            using (var second = NodeProcess.Start(Home, null, "run", "--listen", "127.0.0.1:0"))
            {
                Assert.Equal(1, await second.WaitForExitAsync(TimeSpan.FromSeconds(30)));
                Assert.Contains($"error: a SecureMesh node is already running on {Home}", second.Output, StringComparison.Ordinal);
            }
            // The first one is unharmed, socket included.
            Assert.True(Cli.Json("--home", Home, "status").GetProperty("running").GetBoolean());

            first.Signal(SigKill);
            await first.WaitForExitAsync(TimeSpan.FromSeconds(10));
        }
        // A crash leaves the socket file behind, but not the lock.
        Assert.True(File.Exists(Path.Combine(Home, "control.sock")));
        Assert.False(NodeLock.IsHeld(Home));
        Assert.False(Cli.Json("--home", Home, "status").GetProperty("running").GetBoolean());

        using var next = NodeProcess.Start(Home, null, "run", "--listen", "127.0.0.1:0");
        await next.WaitForLineAsync("control socket", Startup);
        Assert.Contains("removed a stale control socket", next.Output, StringComparison.Ordinal);
        Assert.True(Cli.Json("--home", Home, "status").GetProperty("running").GetBoolean());
        next.Signal(SigTerm);
        Assert.Equal(0, await next.WaitForExitAsync(TimeSpan.FromSeconds(20)));
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
