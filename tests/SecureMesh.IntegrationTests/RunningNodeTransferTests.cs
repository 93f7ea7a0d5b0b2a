using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace SecureMesh.IntegrationTests;

/// <summary>Two running nodes; share, search, get and quarantine all go through each node's control API.</summary>
public sealed class RunningNodeTransferTests() : TempFolderTest("securemesh-api-")
{
    [Fact]
    public async Task Share_search_get_and_quarantine_work_against_running_nodes()
    {
        var (a, b, aId, _, aPort, bPort) = await TwoTrustedHomesAsync();
        foreach (var home in new[] { a, b })
        {
            await OkAsync(home, "config", "set", "chunk-size", "64k");
        }

        await using var nodeA = SecureMeshCli.Start(a, "run", "--listen", $"127.0.0.1:{aPort}");
        await nodeA.WaitForLineAsync("listening on");
        await using var nodeB = SecureMeshCli.Start(b, "run", "--listen", $"127.0.0.1:{bPort}");
        await nodeB.WaitForLineAsync("listening on");

        // Shared while A runs: indexed by the running node and served at once.
        var folder = Directory.CreateDirectory(Path.Combine(Root, "holiday")).FullName;
        var data = new byte[900_000];
        new Random(5).NextBytes(data);
        await File.WriteAllBytesAsync(Path.Combine(folder, "beach photos.zip"), data);
        var share = await SecureMeshCli.RunAsync(a, "share", "add", folder, "--json");
        Assert.True(share.ExitCode == 0, share.ToString());
        Assert.Equal(1, JsonDocument.Parse(share.Out).RootElement.GetProperty("indexed").GetInt32());

        // B's running node connects to A (both dial their trusted peers); its status shows the session.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var status = await SecureMeshCli.RunAsync(b, "status", "--json");
            Assert.True(status.ExitCode == 0, status.ToString());
            using var doc = JsonDocument.Parse(status.Out);
            Assert.True(doc.RootElement.GetProperty("running").GetBoolean());
            if (doc.RootElement.GetProperty("connections").EnumerateArray().Any(c => c.GetProperty("peerId").GetString() == aId))
            {
                break;
            }
            Assert.True(DateTime.UtcNow < deadline, "B never connected to A:\n" + nodeB.Output);
            await Task.Delay(250);
        }

        var search = await SecureMeshCli.RunAsync(b, "search", "beach", "--json");
        Assert.True(search.ExitCode == 0, search.ToString());
        var hit = JsonDocument.Parse(search.Out).RootElement.EnumerateArray().Single();
        Assert.Equal("beach photos.zip", hit.GetProperty("name").GetString());
        Assert.Equal(aId, hit.GetProperty("peers")[0].GetString());
        var contentId = hit.GetProperty("contentId").GetString()!;

        var outDir = Path.Combine(Root, "downloads");
        var get = await SecureMeshCli.RunAsync(b, "get", contentId, "--out", outDir, "--json");
        Assert.True(get.ExitCode == 0, get.ToString());
        Assert.Equal("released", JsonDocument.Parse(get.Out).RootElement.GetProperty("state").GetString());
        Assert.Equal(data, await File.ReadAllBytesAsync(Path.Combine(outDir, "beach photos.zip")));

        // A scanner that flags everything: held (exit 3), listed in quarantine, released by hand through the node.
        await OkAsync(b, "config", "set", "scanner", "/bin/false");
        var held = await SecureMeshCli.RunAsync(b, "get", contentId, "--out", outDir, "--json");
        Assert.True(held.ExitCode == 3, held.ToString());
        // The reason is said once: in the JSON, and one line on stderr beside it; without --json, one line.
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(held.Err, "held in quarantine"));
        var quarantine = await SecureMeshCli.RunAsync(b, "quarantine", "list", "--json");
        var item = JsonDocument.Parse(quarantine.Out).RootElement.EnumerateArray().Single(q => q.GetProperty("state").GetString() == "held");
        Assert.Contains("scanner", item.GetProperty("reason").GetString()!, StringComparison.OrdinalIgnoreCase);
        var release = await SecureMeshCli.RunAsync(b, "quarantine", "release", item.GetProperty("id").GetInt64().ToString(CultureInfo.InvariantCulture), "--to", outDir);
        Assert.True(release.ExitCode == 0, release.ToString());
        Assert.Equal(2, Directory.GetFiles(outDir).Length);
        var heldText = await SecureMeshCli.RunAsync(b, "get", contentId, "--out", outDir);
        Assert.True(heldText.ExitCode == 3, heldText.ToString());
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(heldText.Out + heldText.Err, "scanner '"));

        nodeA.Signal(15);
        nodeB.Signal(15);
        Assert.Equal(0, await nodeA.WaitForExitAsync());
        Assert.Equal(0, await nodeB.WaitForExitAsync());
    }
}

public sealed class GracefulShutdownTests() : TempFolderTest("securemesh-term-")
{
    private static int VerifiedChunks(string home, string contentId)
    {
        using var db = Storage.SecureMeshDatabase.Open(home);
        return db.Downloads.VerifiedChunks(contentId).Count;
    }

    [Fact]
    public async Task SIGTERM_during_a_transfer_loses_nothing_and_the_restarted_node_resumes_it()
    {
        var a = Path.Combine(Root, "a");
        var b = Path.Combine(Root, "b");
        await OkAsync(a, "init");
        await OkAsync(b, "init");
        var (aId, bId) = (await PeerIdAsync(a), await PeerIdAsync(b));
        var aPort = FreePort();
        await OkAsync(a, "peers", "add", bId, "--trust");
        await OkAsync(b, "peers", "add", aId, "--addr", $"127.0.0.1:{aPort}", "--trust");
        await OkAsync(a, "config", "set", "chunk-size", "16k");
        await OkAsync(a, "config", "set", "upload-limit", "512k");
        var downloads = Path.Combine(Root, "downloads");
        foreach (var home in new[] { a, b })
        {
            await OkAsync(home, "config", "set", "discovery", "off");
            await OkAsync(home, "config", "set", "download-dir", downloads);
        }
        await OkAsync(b, "config", "set", "listen", "127.0.0.1:0");
        const int Chunks = 160;
        var data = new byte[Chunks * 16384];
        new Random(31).NextBytes(data);
        var file = Path.Combine(Root, "big.iso");
        await File.WriteAllBytesAsync(file, data);
        await OkAsync(a, "share", "add", file);
        var contentId = JsonDocument.Parse((await SecureMeshCli.RunAsync(a, "share", "list", "--json")).Out).RootElement.GetProperty("files")[0].GetProperty("contentId").GetString()!;

        await using var seeder = SecureMeshCli.Start(a, "run", "--listen", $"127.0.0.1:{aPort}");
        await seeder.WaitForLineAsync("listening on");
        var nodeB = SecureMeshCli.Start(b, "run");
        await nodeB.WaitForLineAsync("listening on");
        await using (nodeB)
        {
            // The download runs inside B's node; this client only starts it.
            await using var client = SecureMeshCli.Start(b, "get", contentId);
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (VerifiedChunks(b, contentId) < 40)
            {
                Assert.True(DateTime.UtcNow < deadline, "no chunk became durable:\n" + nodeB.Output);
                await Task.Delay(50);
            }
            nodeB.Signal(15);
            Assert.Equal(0, await nodeB.WaitForExitAsync());
            Assert.Contains("stopped", nodeB.Output, StringComparison.Ordinal);
        }
        var durable = VerifiedChunks(b, contentId);
        Assert.InRange(durable, 40, Chunks - 1);
        using (var db = Storage.SecureMeshDatabase.Open(b))
        {
            Assert.Equal("ok", db.IntegrityCheck());
        }

        // Restarted, the node resumes the download by itself; a get joins it and reports what was reused.
        await using var restarted = SecureMeshCli.Start(b, "run");
        await restarted.WaitForLineAsync("listening on");
        var get = await SecureMeshCli.RunAsync(b, "get", contentId, "--json");
        Assert.True(get.ExitCode == 0, get.ToString() + "\n" + restarted.Output);
        var summary = JsonDocument.Parse(get.Out).RootElement;
        Assert.Equal("released", summary.GetProperty("state").GetString());
        Assert.Equal(durable, summary.GetProperty("resumedChunks").GetInt64());
        Assert.Equal(Chunks - durable, summary.GetProperty("chunkRequests").GetInt64());
        Assert.Equal(data, await File.ReadAllBytesAsync(Path.Combine(downloads, "big.iso")));
        restarted.Signal(15);
        Assert.Equal(0, await restarted.WaitForExitAsync());
    }
}
