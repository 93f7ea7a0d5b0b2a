using System.Text.Json;
using System.Text.RegularExpressions;

namespace SecureMesh.IntegrationTests;

/// <summary>
/// What an installed <c>securemesh</c> must do, checked against the program the tests start: the dll in the ordinary
/// run, the Native AOT executable in <c>./test.sh</c>'s AOT job (<c>SECUREMESH_EXE</c>, <see cref="SecureMeshProgram"/>),
/// where a trimmed-away serializer printed <c>{}</c> and the control API answered 500 while the commands exited 0.
/// So every JSON output here is read for its keys, and every transfer compared byte for byte.
/// </summary>
public sealed partial class AotExecutableTests() : TempFolderTest("securemesh-aot-")
{
    [Fact]
    public async Task The_tests_start_the_program_SECUREMESH_EXE_names_or_else_the_dll()
    {
        var home = Path.Combine(Root, "home");
        await using var node = SecureMeshCli.Start(home, "run", "--listen", "127.0.0.1:0");
        // The image the process runs, read before it can end: the executable itself, or the dotnet host for the dll.
        var image = Path.GetFileName(File.ResolveLinkTarget($"/proc/{node.Id}/exe", returnFinalTarget: true)?.FullName ?? "");
        if (SecureMeshProgram.Executable is { } exe)
        {
            Assert.Equal(Path.GetFileName(exe), image);
            Assert.False(File.Exists(Path.Combine(Path.GetDirectoryName(exe)!, "securemesh.dll")),
                "SECUREMESH_EXE should be the Native AOT executable, which has no securemesh.dll beside it");
        }
        else
        {
            Assert.Equal("dotnet", image);
        }
    }

    [Fact]
    public async Task Init_id_peers_add_and_share_add_print_what_scripts_read()
    {
        var home = Path.Combine(Root, "alice");
        await OkAsync(home, "init");

        var id = await SecureMeshCli.RunAsync(home, "id", "--json");
        Assert.True(id.ExitCode == 0, id.ToString());
        using (var doc = JsonDocument.Parse(id.Out))
        {
            var root = doc.RootElement;
            var peerId = root.GetProperty("peerId").GetString()!;
            Assert.StartsWith("12D3KooW", peerId, StringComparison.Ordinal);
            Assert.Matches(FingerprintPattern(), root.GetProperty("fingerprint").GetString()!);
            Assert.NotEmpty(root.GetProperty("listen").EnumerateArray().Select(a => a.GetString()));
            var multiaddrs = root.GetProperty("multiaddrs").EnumerateArray().Select(a => a.GetString()!).ToList();
            Assert.NotEmpty(multiaddrs);
            Assert.All(multiaddrs, a => Assert.EndsWith("/p2p/" + peerId, a, StringComparison.Ordinal));
        }

        using var bob = SecureMesh.Core.Identity.NodeIdentity.Generate();
        await OkAsync(home, "peers", "add", bob.PeerId.Text, "--name", "bob", "--addr", "127.0.0.1:4747");
        var peers = await SecureMeshCli.RunAsync(home, "peers", "list", "--json");
        Assert.True(peers.ExitCode == 0, peers.ToString());
        using (var doc = JsonDocument.Parse(peers.Out))
        {
            var peer = Assert.Single(doc.RootElement.EnumerateArray());
            Assert.Equal(bob.PeerId.Text, peer.GetProperty("peerId").GetString());
            Assert.Equal("bob", peer.GetProperty("name").GetString());
            Assert.Equal("pending", peer.GetProperty("state").GetString());
        }

        var file = Path.Combine(Root, "notes.txt");
        await File.WriteAllBytesAsync(file, RandomBytes(50_000, 1));
        var share = await SecureMeshCli.RunAsync(home, "share", "add", file, "--json");
        Assert.True(share.ExitCode == 0, share.ToString());
        using (var doc = JsonDocument.Parse(share.Out))
        {
            var root = doc.RootElement;
            Assert.Equal(file, root.GetProperty("path").GetString());
            Assert.Equal(1, root.GetProperty("files").GetInt32());
            Assert.Equal(1, root.GetProperty("indexed").GetInt32());
            Assert.Equal(50_000, root.GetProperty("bytesHashed").GetInt64());
            Assert.Empty(root.GetProperty("failed").EnumerateArray());
        }
    }

    [Fact]
    public async Task Run_status_share_add_and_get_one_off_and_through_the_node_work_over_the_control_api()
    {
        var (a, b, aId, _, aPort, bPort) = await TwoTrustedHomesAsync();

        await using var nodeA = SecureMeshCli.Start(a, "run", "--listen", $"127.0.0.1:{aPort}");
        await nodeA.WaitForLineAsync("listening on");

        // Through A's control API: status, and two files shared by the running node.
        var status = await StatusAsync(a);
        Assert.True(status.GetProperty("running").GetBoolean());
        Assert.Equal(aId, status.GetProperty("peerId").GetString());
        var folder = Directory.CreateDirectory(Path.Combine(Root, "shared")).FullName;
        var first = RandomBytes(1_500_000, 2);
        var second = RandomBytes(700_000, 3);
        await File.WriteAllBytesAsync(Path.Combine(folder, "first.bin"), first);
        await File.WriteAllBytesAsync(Path.Combine(folder, "second.bin"), second);
        var share = await SecureMeshCli.RunAsync(a, "share", "add", folder, "--json");
        Assert.True(share.ExitCode == 0, share.ToString());
        Assert.Equal(2, JsonDocument.Parse(share.Out).RootElement.GetProperty("indexed").GetInt32());
        var list = await SecureMeshCli.RunAsync(a, "share", "list", "--json");
        Assert.True(list.ExitCode == 0, list.ToString());
        var ids = JsonDocument.Parse(list.Out).RootElement.GetProperty("files").EnumerateArray()
            .ToDictionary(f => f.GetProperty("name").GetString()!, f => f.GetProperty("contentId").GetString()!);

        // A one-off get: B runs no node, so the command is a node for as long as it needs.
        var oneOff = await SecureMeshCli.RunAsync(b, "get", ids["first.bin"], "--out", Path.Combine(Root, "one-off"), "--json");
        Assert.True(oneOff.ExitCode == 0, oneOff.ToString());
        Assert.Equal("released", JsonDocument.Parse(oneOff.Out).RootElement.GetProperty("state").GetString());
        Assert.Equal(first, await File.ReadAllBytesAsync(Path.Combine(Root, "one-off", "first.bin")));

        // B's node runs: its status, read through its control API, shows the session with A; get goes through it.
        await using var nodeB = SecureMeshCli.Start(b, "run", "--listen", $"127.0.0.1:{bPort}");
        await nodeB.WaitForLineAsync("listening on");
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!(await StatusAsync(b)).GetProperty("connections").EnumerateArray().Any(c => c.GetProperty("peerId").GetString() == aId))
        {
            Assert.True(DateTime.UtcNow < deadline, "B's node never showed a connection to A:\n" + nodeB.Output);
            await Task.Delay(250);
        }
        var throughNode = await SecureMeshCli.RunAsync(b, "get", ids["second.bin"], "--out", Path.Combine(Root, "node"), "--json");
        Assert.True(throughNode.ExitCode == 0, throughNode.ToString());
        Assert.Equal(second, await File.ReadAllBytesAsync(Path.Combine(Root, "node", "second.bin")));
        var transfers = (await StatusAsync(b)).GetProperty("transfers");
        Assert.Equal(JsonValueKind.Array, transfers.ValueKind);
    }

    [Fact]
    public async Task Tui_starts_and_quits_in_a_terminal_that_reports_no_size()
    {
        // `script` without a terminal of its own makes a pseudo-terminal of 0×0; the UI ended at once there with
        // "width ('-3') must be a non-negative value" (the JIT build as much as the Native AOT one).
        var home = Path.Combine(Root, "home");
        await OkAsync(home, "init");
        await OkAsync(home, "config", "set", "listen", "127.0.0.1:0");
        await OkAsync(home, "config", "set", "discovery", "off");
        var typescript = Path.Combine(Root, "typescript");
        var start = new System.Diagnostics.ProcessStartInfo("script")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "-q", "-e", "-f", "-c", SecureMeshProgram.ShellCommand(["--home", home, "tui"]), typescript })
        {
            start.ArgumentList.Add(arg);
        }
        start.Environment.Remove("COLUMNS");
        start.Environment.Remove("LINES");
        using var script = System.Diagnostics.Process.Start(start)!;
        var output = script.StandardOutput.ReadToEndAsync();
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(60);
            string Screen() => File.Exists(typescript) ? File.ReadAllText(typescript) : "";
            while (!Screen().Contains("node running", StringComparison.Ordinal))
            {
                Assert.False(script.HasExited, "the UI ended before showing the node running:\n" + Screen());
                Assert.True(DateTime.UtcNow < deadline, "the UI never showed the node running:\n" + Screen());
                await Task.Delay(200);
            }
            Assert.Contains("Peer ID 12D3KooW", Screen(), StringComparison.Ordinal);
            Assert.DoesNotContain("error:", Screen(), StringComparison.Ordinal);
            await script.StandardInput.WriteAsync('\u0011'); // Ctrl+Q
            await script.StandardInput.FlushAsync();
            using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await script.WaitForExitAsync(patience.Token);
            Assert.True(script.ExitCode == 0, $"exit {script.ExitCode}:\n{Screen()}");
        }
        finally
        {
            if (!script.HasExited)
            {
                script.Kill(entireProcessTree: true);
            }
            await output;
        }
    }

    /// <summary><c>status --json</c>, which must succeed and be an object with the node's state.</summary>
    private static async Task<JsonElement> StatusAsync(string home)
    {
        var status = await SecureMeshCli.RunAsync(home, "status", "--json");
        Assert.True(status.ExitCode == 0, status.ToString());
        using var doc = JsonDocument.Parse(status.Out);
        var root = doc.RootElement.Clone();
        Assert.Equal(JsonValueKind.Array, root.GetProperty("connections").ValueKind);
        return root;
    }

    private static byte[] RandomBytes(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    [GeneratedRegex("^[a-z2-7]{4}(-[a-z2-7]{4}){4}$")]
    private static partial Regex FingerprintPattern();
}
