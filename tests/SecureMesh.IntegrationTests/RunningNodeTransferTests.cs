using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace SecureMesh.IntegrationTests;

/// <summary>Two running nodes; share, search, get and quarantine all go through each node's control API.</summary>
public sealed class RunningNodeTransferTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("securemesh-api-").FullName;

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

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task<string> PeerIdAsync(string home)
    {
        var id = await SecureMeshCli.RunAsync(home, "id", "--json");
        using var doc = JsonDocument.Parse(id.Out);
        return doc.RootElement.GetProperty("peerId").GetString()!;
    }

    private static async Task OkAsync(string home, params string[] args)
    {
        var result = await SecureMeshCli.RunAsync(home, args);
        Assert.True(result.ExitCode == 0, $"securemesh {string.Join(' ', args)}: {result}");
    }

    [Fact]
    public async Task Share_search_get_and_quarantine_work_against_running_nodes()
    {
        var a = Path.Combine(_root, "a");
        var b = Path.Combine(_root, "b");
        await OkAsync(a, "init");
        await OkAsync(b, "init");
        var (aId, bId) = (await PeerIdAsync(a), await PeerIdAsync(b));
        var (aPort, bPort) = (FreePort(), FreePort());
        await OkAsync(a, "peers", "add", bId, "--addr", $"127.0.0.1:{bPort}", "--trust");
        await OkAsync(b, "peers", "add", aId, "--addr", $"127.0.0.1:{aPort}", "--trust");
        foreach (var home in new[] { a, b })
        {
            await OkAsync(home, "config", "set", "discovery", "off");
            await OkAsync(home, "config", "set", "chunk-size", "64k");
        }

        await using var nodeA = SecureMeshCli.Start(a, "run", "--listen", $"127.0.0.1:{aPort}");
        await nodeA.WaitForLineAsync("listening on");
        await using var nodeB = SecureMeshCli.Start(b, "run", "--listen", $"127.0.0.1:{bPort}");
        await nodeB.WaitForLineAsync("listening on");

        // Shared while A runs: indexed by the running node and served at once.
        var folder = Directory.CreateDirectory(Path.Combine(_root, "holiday")).FullName;
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

        var outDir = Path.Combine(_root, "downloads");
        var get = await SecureMeshCli.RunAsync(b, "get", contentId, "--out", outDir, "--json");
        Assert.True(get.ExitCode == 0, get.ToString());
        Assert.Equal("released", JsonDocument.Parse(get.Out).RootElement.GetProperty("state").GetString());
        Assert.Equal(data, await File.ReadAllBytesAsync(Path.Combine(outDir, "beach photos.zip")));

        // A scanner that flags everything: held (exit 3), listed in quarantine, released by hand through the node.
        await OkAsync(b, "config", "set", "scanner", "/bin/false");
        var held = await SecureMeshCli.RunAsync(b, "get", contentId, "--out", outDir, "--json");
        Assert.True(held.ExitCode == 3, held.ToString());
        var quarantine = await SecureMeshCli.RunAsync(b, "quarantine", "list", "--json");
        var item = JsonDocument.Parse(quarantine.Out).RootElement.EnumerateArray().Single(q => q.GetProperty("state").GetString() == "held");
        Assert.Contains("scanner", item.GetProperty("reason").GetString()!, StringComparison.OrdinalIgnoreCase);
        var release = await SecureMeshCli.RunAsync(b, "quarantine", "release", item.GetProperty("id").GetInt64().ToString(CultureInfo.InvariantCulture), "--to", outDir);
        Assert.True(release.ExitCode == 0, release.ToString());
        Assert.Equal(2, Directory.GetFiles(outDir).Length);

        nodeA.Signal(15);
        nodeB.Signal(15);
        Assert.Equal(0, await nodeA.WaitForExitAsync());
        Assert.Equal(0, await nodeB.WaitForExitAsync());
    }
}
