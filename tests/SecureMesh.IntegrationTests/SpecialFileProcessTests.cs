using System.Diagnostics;
using System.Text.Json;

namespace SecureMesh.IntegrationTests;

/// <summary>
/// Issue 14 through the real <c>securemesh</c> executable: a FIFO in a shared folder never stalls <c>share add</c>, the
/// node's startup rescan or its shutdown (finding 2); hidden entries are left out and listed (finding 7); the download
/// folder is shown resolved and a scanner with a spliced <c>{}</c> is refused (findings 5, 6).
/// </summary>
public sealed class SpecialFileProcessTests() : TempFolderTest("securemesh-special-")
{
    private const int SigTerm = 15;

    [Fact]
    public async Task A_fifo_never_stalls_share_add_the_startup_rescan_or_shutdown()
    {
        var home = Path.Combine(Root, "home");
        var shared = Directory.CreateDirectory(Path.Combine(Root, "shared")).FullName;
        await File.WriteAllTextAsync(Path.Combine(shared, "real.txt"), "real");
        MakeFifo(Path.Combine(shared, "pipe"));
        await File.WriteAllTextAsync(Path.Combine(shared, ".env"), "API_KEY=1");
        Assert.Equal(0, (await Run(home, "init")).ExitCode);

        // Before the fix this never returned: opening the FIFO waited for a writer (killed at the limit: exit -1).
        var add = await SecureMeshCli.RunAsync(home, TimeSpan.FromSeconds(60), "share", "add", shared, "--json");
        Assert.True(add.ExitCode == 0, add.ToString());
        var result = JsonDocument.Parse(add.Out).RootElement;
        Assert.Equal(1, result.GetProperty("files").GetInt32());
        Assert.Equal(2, result.GetProperty("skipped").GetInt32());
        var skipped = Skipped(home);
        Assert.StartsWith("a FIFO", skipped[Path.Combine(shared, "pipe")], StringComparison.Ordinal);
        Assert.StartsWith("hidden", skipped[Path.Combine(shared, ".env")], StringComparison.Ordinal);
        var text = await Run(home, "share", "list", "--skipped");
        Assert.Contains("a FIFO (named pipe)", text.Out, StringComparison.Ordinal);

        // A FIFO that appears after sharing meets the node's startup rescan.
        MakeFifo(Path.Combine(shared, "later"));
        using var node = NodeProcess.Start(home, null, "run", "--listen", "127.0.0.1:0");
        await node.WaitForLineAsync("control socket", TimeSpan.FromSeconds(30));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!Skipped(home).ContainsKey(Path.Combine(shared, "later")))
        {
            Assert.True(DateTime.UtcNow < deadline, "the startup rescan did not finish:\n" + node.Output);
            await Task.Delay(200);
        }
        // Through the running node as well, with hidden entries asked for.
        var again = await SecureMeshCli.RunAsync(home, TimeSpan.FromSeconds(60), "share", "add", shared, "--include-hidden", "--json");
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Equal(2, JsonDocument.Parse(again.Out).RootElement.GetProperty("files").GetInt32());

        node.Signal(SigTerm);
        Assert.Equal(0, await node.WaitForExitAsync(TimeSpan.FromSeconds(20)));
    }

    [Fact]
    public async Task The_download_folder_is_stored_resolved_and_a_spliced_scanner_placeholder_is_refused()
    {
        var home = Path.Combine(Root, "home");
        Assert.Equal(0, (await Run(home, "init")).ExitCode);
        var real = Directory.CreateDirectory(Path.Combine(Root, "real-downloads")).FullName;
        var link = Path.Combine(Root, "downloads-link");
        Directory.CreateSymbolicLink(link, real);

        var set = await Run(home, "config", "set", "download-dir", link);
        Assert.True(set.ExitCode == 0, set.ToString());
        Assert.Contains($"download-dir = {real}", set.Out, StringComparison.Ordinal);
        Assert.Equal(real, (await Run(home, "config", "get", "download-dir")).Out.Trim());

        var scanner = await Run(home, "config", "set", "scanner", "sh -c 'clamscan \"{}\"'");
        Assert.NotEqual(0, scanner.ExitCode);
        Assert.Contains("{} must be a whole argument", scanner.Err, StringComparison.Ordinal);
        var fine = await Run(home, "config", "set", "scanner", "clamscan --no-summary {}");
        Assert.True(fine.ExitCode == 0, fine.ToString());
    }

    private static Dictionary<string, string> Skipped(string home)
    {
        var list = Cli.Json("--home", home, "share", "list", "--skipped");
        return list.GetProperty("skipped").EnumerateArray()
            .ToDictionary(e => e.GetProperty("path").GetString()!, e => e.GetProperty("reason").GetString()!);
    }

    private static void MakeFifo(string path)
    {
        using var process = Process.Start("mkfifo", [path]);
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
    }

    private static Task<CommandResult> Run(string home, params string[] args) => SecureMeshCli.RunAsync(home, args);
}
