using SecureMesh.Node;

namespace SecureMesh.Cli.Tests;

/// <summary>
/// A one-off command opens the database on another core while it loads the identity. When the identity cannot be
/// unlocked, the command fails as before and nothing it opened stays open.
/// </summary>
public sealed class NodeRuntimeStartTests : IDisposable
{
    private readonly CliHarness _cli = new();

    [Fact]
    public void A_wrong_passphrase_fails_clearly_and_leaves_no_database_handle_and_no_lock()
    {
        Assert.Equal(0, _cli.RunWithInput("correct horse\n", "--home", _cli.Home, "init", "--passphrase-stdin").ExitCode);

        var wrong = _cli.RunWithInput("battery staple\n", "--home", _cli.Home, "search", "anything", "--passphrase-stdin");

        Assert.Equal(1, wrong.ExitCode);
        Assert.Contains("passphrase", wrong.Err, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(OpenFiles(), path => path.StartsWith(_cli.Home + Path.DirectorySeparatorChar, StringComparison.Ordinal));
        Assert.False(NodeLock.IsHeld(_cli.Home));
        // The database opened beside the identity was a whole one: the right passphrase works at once afterwards.
        var right = _cli.RunWithInput("correct horse\n", "--home", _cli.Home, "search", "anything", "--passphrase-stdin", "--json");
        Assert.True(right.ExitCode == 0, right.ToString());
        Assert.Equal("[]", right.Out.Trim());
    }

    /// <summary>The files this process holds open (its descriptors' targets).</summary>
    private static List<string> OpenFiles()
    {
        var files = new List<string>();
        foreach (var fd in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget is { } target)
                {
                    files.Add(target);
                }
            }
            catch (IOException)
            {
                // Closed between the listing and the read.
            }
        }
        return files;
    }

    public void Dispose() => _cli.Dispose();
}
