using SecureMesh.TestSupport;

namespace SecureMesh.IntegrationTests;

/// <summary>
/// Issue 17, item 3, against another implementation: a stock js-libp2p node with <c>@libp2p/autonat-v2</c> (npm), which our
/// node trusts, asks us to dial its address back and is told it is dialable; and answers our request, so our node's
/// <c>status</c> shows its listen address reachable. Both run in namespaces joined by one veth pair, on 11.17.1.0/24:
/// js-libp2p's AutoNAT neither asks about nor dials private addresses, and the link exists only between the two.
/// </summary>
public sealed class AutoNatInteropTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("securemesh-h17n-").FullName;
    private readonly ReachNamespaces _namespaces = new();

    [RootFact("network namespaces")]
    public async Task A_js_libp2p_node_and_ours_verify_each_others_addresses_with_autonat_v2()
    {
        var ours = _namespaces.Add("ours");
        var theirs = _namespaces.Add("js");
        _namespaces.Link(ours, "eth0", theirs, "eth0");
        ReachNamespaces.Address(ours, "11.17.1.1/24", "eth0");
        ReachNamespaces.Address(theirs, "11.17.1.2/24", "eth0");

        var script = Path.Combine(JsPeer.InteropDirectory(), "autonat-node.mjs");
        var seed = Libp2pJs.NewSeed();
        var jsId = System.Text.Json.JsonDocument.Parse(ReachNamespaces.Run(null, "env", $"LIBP2P_SEED={seed}", "node", script, "peerid")).RootElement.GetProperty("peerId").GetString()!;

        var home = Path.Combine(_root, "a");
        Assert.Equal(0, Cli.Run("--home", home, "init").ExitCode);
        var us = Cli.Json("--home", home, "id").GetProperty("peerId").GetString()!;
        Assert.Equal(0, Cli.Run("--home", home, "peers", "add", jsId, "--trust", "--name", "js").ExitCode);
        Assert.Equal(0, Cli.Run("--home", home, "config", "set", "discovery", "off").ExitCode);
        using var node = NodeProcess.Start(home, ours, "--verbose", "run", "--listen", "11.17.1.1:4747");
        await node.WaitForLineAsync("control socket", TimeSpan.FromSeconds(60));

        using var js = NodeProcess.StartCommand(theirs, ["env", $"LIBP2P_SEED={seed}", "DEBUG=libp2p:auto-nat-v2*", "node", script,
            "/ip4/11.17.1.2/tcp/4001", $"/ip4/11.17.1.1/tcp/4747/p2p/{us}"]);
        await js.WaitForLineAsync("\"event\":\"dialled\"", TimeSpan.FromSeconds(60));

        // js asks us: our server dials 11.17.1.2:4001 back and js counts it as verified.
        await js.WaitForLineAsync("/ip4/11.17.1.2/tcp/4001 is externally dialable", TimeSpan.FromSeconds(60));
        Assert.Contains("AutoNAT: dialled", node.Output, StringComparison.Ordinal);

        // We ask js: its server dials our listen address back with our nonce, and status says reachable.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var reach = Cli.Json("--home", home, "status").GetProperty("reachability").EnumerateArray()
                .FirstOrDefault(r => r.GetProperty("address").GetString() == "/ip4/11.17.1.1/tcp/4747");
            if (reach.ValueKind != System.Text.Json.JsonValueKind.Undefined && reach.GetProperty("state").GetString() == "reachable")
            {
                break;
            }
            Assert.True(DateTime.UtcNow < deadline, $"our address never became reachable\n--- node:\n{node.Output}\n--- js:\n{js.Output}");
            await Task.Delay(500);
        }
        Assert.Contains("is reachable (asked " + jsId, node.Output, StringComparison.Ordinal);

        js.Signal(15);
        node.Signal(15);
        Assert.Equal(0, await node.WaitForExitAsync(TimeSpan.FromSeconds(30)));
    }

    public void Dispose()
    {
        _namespaces.Dispose();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
