using System.Text.Json;

namespace SecureMesh.IntegrationTests;

/// <summary>Issue 15: the real program takes host names and multiaddrs for peers and for listening, and dials them.</summary>
public sealed class AddressCommandTests() : TempFolderTest("securemesh-addr-")
{
    [Fact]
    public async Task Nodes_reach_each_other_at_a_host_name_and_at_multiaddrs()
    {
        // B knows A by a /dns4 multiaddr that names A's Peer ID; A knows B by host name.
        var (a, b, aId, bId, aPort, bPort) = await TwoTrustedHomesAsync(
            addressOfA: (id, port) => $"/dns4/localhost/tcp/{port}/p2p/{id}", addressOfB: (_, port) => $"localhost:{port}");
        // Listen addresses as a multiaddr (on the command line) and as a name (in the config).
        await OkAsync(b, "config", "set", "listen", $"localhost:{bPort}");

        await using var nodeA = SecureMeshCli.Start(a, "run", "--listen", $"/ip4/127.0.0.1/tcp/{aPort}");
        await nodeA.WaitForLineAsync("listening on");
        Assert.Contains($"listening on 127.0.0.1:{aPort}", nodeA.Output, StringComparison.Ordinal);
        await using var nodeB = SecureMeshCli.Start(b, "run");
        await nodeB.WaitForLineAsync("listening on");
        Assert.Contains($"listening on 127.0.0.1:{bPort}", nodeB.Output, StringComparison.Ordinal);

        foreach (var (home, other, node) in new[] { (b, aId, nodeB), (a, bId, nodeA) })
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (true)
            {
                var status = await SecureMeshCli.RunAsync(home, "status", "--json");
                Assert.True(status.ExitCode == 0, status.ToString());
                using var doc = JsonDocument.Parse(status.Out);
                if (doc.RootElement.GetProperty("connections").EnumerateArray().Any(c => c.GetProperty("peerId").GetString() == other))
                {
                    break;
                }
                Assert.True(DateTime.UtcNow < deadline, "no session:\n" + node.Output);
                await Task.Delay(250);
            }
        }

        // What the user typed is what is stored and listed.
        using (var peers = JsonDocument.Parse((await SecureMeshCli.RunAsync(b, "peers", "list", "--json")).Out))
        {
            var entry = peers.RootElement.EnumerateArray().Single(p => p.GetProperty("peerId").GetString() == aId);
            Assert.Contains($"/dns4/localhost/tcp/{aPort}/p2p/{aId}", entry.GetProperty("addresses").EnumerateArray().Select(x => x.GetString()));
        }

        nodeA.Signal(15);
        nodeB.Signal(15);
        Assert.Equal(0, await nodeA.WaitForExitAsync());
        Assert.Equal(0, await nodeB.WaitForExitAsync());
    }

    [Theory]
    [InlineData("peers", "add", "PEER", "--addr", "/ip4/127.0.0.1/tcp/70000")]
    [InlineData("peers", "add", "PEER", "--addr", "nas.local")]
    [InlineData("peers", "add", "PEER", "--addr", "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWAwuGjgULaLPKfdD4dGfUQmFbdcmgaXcpSEcGutEyPYuh")]
    [InlineData("config", "set", "listen", "/ip4/127.0.0.1")]
    [InlineData("run", "--listen", "not an address")]
    public async Task A_malformed_address_exits_2_with_one_line(params string[] args)
    {
        var home = Path.Combine(Root, "h");
        await OkAsync(home, "init");
        var other = Path.Combine(Root, "other");
        await OkAsync(other, "init");
        var peer = await PeerIdAsync(other);
        var result = await SecureMeshCli.RunAsync(home, [.. args.Select(x => x == "PEER" ? peer : x)]);
        Assert.True(result.ExitCode == 2, result.ToString());
        var lines = result.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0], StringComparison.Ordinal);
    }
}
