using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using SecureMesh.Core.Content;
using SecureMesh.TestSupport;
using Xunit.Abstractions;

namespace SecureMesh.IntegrationTests.NatLab;

/// <summary>The NAT lab's cases run alone, after the parallel tests: their times to connect are figures, and a loaded machine distorts them.</summary>
[CollectionDefinition(nameof(NatLabCollection), DisableParallelization = true)]
public sealed class NatLabCollection;

/// <summary>
/// Issue 17's NAT matrix (<see cref="NatTopology"/>): a public relay R and two homes behind NAT, each with a real
/// <c>securemesh run</c>. A and B are told only R's address (and trust it); once each holds a reservation on R, they are
/// told each other's Peer ID alone (<c>peers add PEERID --trust</c>, no address). They must meet through R; DCUtR turns
/// the relayed connection into a direct one where both NATs map endpoint-independently, and the relayed connection
/// stays where one is symmetric; a 64 MiB <c>get</c> then completes byte-identical either way. Each case prints its
/// path, time to connect (from <c>peers add</c>) and the get's throughput.
/// </summary>
[Collection(nameof(NatLabCollection))]
public sealed class NatMatrixTests(ITestOutputHelper output) : IDisposable
{
    private const int FileSize = 64 << 20;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);
    private readonly string _root = Directory.CreateTempSubdirectory("securemesh-nat-").FullName;

    [RootFact("network namespaces and nftables")]
    public Task Both_routers_endpoint_independent_the_peers_hole_punch_and_a_64_MiB_get_completes() =>
        RunCaseAsync(NatBehaviour.EndpointIndependent, NatBehaviour.EndpointIndependent, "holepunched");

    [RootFact("network namespaces and nftables")]
    public Task One_router_symmetric_the_peers_stay_relayed_and_a_64_MiB_get_completes() =>
        RunCaseAsync(NatBehaviour.EndpointIndependent, NatBehaviour.Symmetric, "relayed");

    [RootFact("network namespaces and nftables")]
    public Task Both_routers_symmetric_the_peers_stay_relayed_and_a_64_MiB_get_completes() =>
        RunCaseAsync(NatBehaviour.Symmetric, NatBehaviour.Symmetric, "relayed");

    private async Task RunCaseAsync(NatBehaviour router1, NatBehaviour router2, string expectedPath)
    {
        using var lab = NatTopology.Create(router1, router2);
        var homeR = Path.Combine(_root, "r");
        var homeA = Path.Combine(_root, "a");
        var homeB = Path.Combine(_root, "b");
        var r = Identity(homeR);
        var a = Identity(homeA);
        var b = Identity(homeB);
        foreach (var home in new[] { homeR, homeA, homeB })
        {
            Ok(home, "config", "set", "discovery", "off");
        }
        Ok(homeR, "peers", "add", a, "--trust", "--name", "a");
        Ok(homeR, "peers", "add", b, "--trust", "--name", "b");
        Ok(homeA, "peers", "add", r, "--trust", "--name", "relay", "--addr", $"{NatTopology.RelayAddress}:4747");
        Ok(homeB, "peers", "add", r, "--trust", "--name", "relay", "--addr", $"{NatTopology.RelayAddress}:4747");
        var share = Path.Combine(_root, "share");
        Directory.CreateDirectory(share);
        var file = Path.Combine(share, "holiday-video.bin");
        var data = new byte[FileSize];
        new Random(1717).NextBytes(data);
        await File.WriteAllBytesAsync(file, data);
        var contentId = (await FileIndexer.IndexAsync(file, 1 << 20)).ContentId.Text;
        Ok(homeB, "share", "add", share);

        var nodes = new List<NodeProcess>();
        try
        {
            var relay = NodeProcess.Start(homeR, lab.Relay, "run", "--listen", "0.0.0.0:4747");
            nodes.Add(relay);
            var nodeA = NodeProcess.Start(homeA, lab.Home(1), "run", "--listen", "0.0.0.0:4747");
            nodes.Add(nodeA);
            var nodeB = NodeProcess.Start(homeB, lab.Home(2), "run", "--listen", "0.0.0.0:4747");
            nodes.Add(nodeB);
            foreach (var node in nodes)
            {
                await node.WaitForLineAsync("control socket", Patience);
            }
            await nodeA.WaitForLineAsync($"reserved a relay slot on {r}", Patience);
            await nodeB.WaitForLineAsync($"reserved a relay slot on {r}", Patience);

            // Told each other's Peer ID only.
            var clock = Stopwatch.StartNew();
            Ok(homeA, "peers", "add", b, "--trust", "--name", "b");
            Ok(homeB, "peers", "add", a, "--trust", "--name", "a");
            await UntilAsync(() => Connected(homeA).Contains(b) && Connected(homeB).Contains(a), "A and B connected", nodes);
            var connected = clock.Elapsed;
            Assert.Contains(nodes[1..], n => n.Output.Contains("relayed via " + r, StringComparison.Ordinal));

            // DCUtR runs on the relayed connection: it ends in a direct connection or gives up (three attempts).
            bool Punched() => nodes[1..].Any(n => n.Output.Contains("hole punch with", StringComparison.Ordinal) && n.Output.Contains(" succeeded: direct connection", StringComparison.Ordinal));
            bool GaveUp() => nodes[1..].Any(n => n.Output.Contains("failed, the relayed connection stays", StringComparison.Ordinal));
            await UntilAsync(() => Punched() || GaveUp(), "the hole punch's outcome", nodes);
            var settled = clock.Elapsed;
            var path = Punched() ? "holepunched" : "relayed";
            Assert.True(expectedPath == path, $"expected {expectedPath}, got {path}:\n{Tails(nodes)}");
            var direct = string.Empty;
            if (path == "holepunched")
            {
                await UntilAsync(() => Connected(homeA).Contains(b) && Connected(homeB).Contains(a), "the direct connection in place", nodes);
                // The direct connection runs between the routers' public addresses: the NATs' mappings, not a shortcut.
                var remote = System.Text.RegularExpressions.Regex.Match(string.Join('\n', nodes[1..].Select(n => n.Output)), @"succeeded: direct connection (\S+)").Groups[1].Value;
                Assert.True(remote.StartsWith(NatTopology.RouterWan(1) + ":", StringComparison.Ordinal) || remote.StartsWith(NatTopology.RouterWan(2) + ":", StringComparison.Ordinal), remote);
                direct = $" ({remote})";
            }

            var outDir = Path.Combine(_root, "out");
            var fetch = Stopwatch.StartNew();
            var get = await SecureMeshCli.RunAsync(homeA, Patience * 2, "get", contentId, "--out", outDir, "--json");
            fetch.Stop();
            Assert.True(get.ExitCode == 0, $"get: {get}\n{Tails(nodes)}");
            var released = JsonDocument.Parse(get.Out).RootElement.GetProperty("path").GetString()!;
            var fetched = await File.ReadAllBytesAsync(released);
            Assert.True(data.SequenceEqual(fetched), "the fetched file differs");
            var line = string.Create(CultureInfo.InvariantCulture,
                $"NAT matrix: A {router1}, B {router2} -> {path}{direct}; connected {connected.TotalSeconds:0.0} s after peers add, path settled at {settled.TotalSeconds:0.0} s; 64 MiB get {fetch.Elapsed.TotalSeconds:0.0} s ({FileSize / 1048576.0 / fetch.Elapsed.TotalSeconds:0.0} MiB/s)");
            output.WriteLine(line);
            Console.WriteLine(line);

            foreach (var node in nodes)
            {
                node.Signal(15);
            }
            foreach (var node in nodes)
            {
                Assert.Equal(0, await node.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            }
        }
        finally
        {
            foreach (var node in nodes)
            {
                node.Dispose();
            }
        }
    }

    private static void Ok(string home, params string[] args) => MultiHostTests.Ok(home, args);

    private static string Identity(string home) => MultiHostTests.Identity(home);

    private static HashSet<string> Connected(string home) => MultiHostTests.Connected(home);

    private static async Task UntilAsync(Func<bool> condition, string what, List<NodeProcess> nodes)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not within {Patience.TotalSeconds:0}s: {what}\n{Tails(nodes)}");
            await Task.Delay(100);
        }
    }

    private static string Tails(List<NodeProcess> nodes) => string.Join('\n', nodes.Select((n, k) =>
        $"--- {(k == 0 ? "R" : k == 1 ? "A" : "B")}:\n" + string.Join('\n', n.Output.Split('\n').TakeLast(40))));

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
