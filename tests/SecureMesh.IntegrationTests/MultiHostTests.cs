using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using SecureMesh.Core.Content;
using SecureMesh.TestSupport;
using Xunit.Abstractions;

namespace SecureMesh.IntegrationTests;

/// <summary>
/// Eight hosts on one switched LAN, each in its own network namespace (<see cref="NamespaceLan"/>): seven honest
/// <c>securemesh run</c> nodes and one hostile host that every honest node trusts. The hostile host runs the
/// SecureMesh.HostilePeer program twice: as the trusted peer, which claims every file (a manifest it signed, have-all)
/// but answers every chunk request with a lie, and as a flooder, which from start to end hits all seven nodes with
/// half-open connections, stalled handshakes, garbage and handshakes under unknown identities, from four addresses.
/// The honest nodes must still find one another and fetch every file exactly, from several seeders at once; drop the
/// liar with the evidence in their audit log (and ban it once it has failed them three times, the engine's rule);
/// never blame an honest peer; never answer a stranger; and stop cleanly. Needs root and iproute2 (CI has both);
/// skipped (never failed) for another user.
/// </summary>
public sealed partial class MultiHostTests(ITestOutputHelper output) : IDisposable
{
    private const string Subnet = "10.231.88";
    private const int Honest = 7;
    private const int HostileHost = 8;
    private const int ChunkSize = 64 * 1024;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);
    private readonly string _root = Directory.CreateTempSubdirectory("securemesh-lan-").FullName;

    [RootFact("network namespaces")]
    public async Task Seven_honest_nodes_share_and_fetch_exactly_while_a_trusted_peer_lies_about_chunks_and_floods_handshakes()
    {
        var clock = Stopwatch.StartNew();

        // Three files: one held by three honest seeders (a real swarm), two held by one honest seeder each; the hostile
        // peer claims all three. Every honest node downloads at least one of them.
        var files = Path.Combine(_root, "files");
        Directory.CreateDirectory(files);
        var shared = new[]
        {
            new SharedFile(Path.Combine(files, "survey-maps.tar"), 4 << 20, [1, 2, 3], [4, 5, 6, 7]),
            new SharedFile(Path.Combine(files, "field-notes.pdf"), (2 << 20) + 12_345, [4], [1, 6]),
            new SharedFile(Path.Combine(files, "harbour-video.mkv"), 3 << 20, [5], [2, 3, 7]),
        };
        foreach (var (file, n) in shared.Select((f, n) => (f, n)))
        {
            var data = new byte[file.Size];
            new Random(9100 + n).NextBytes(data);
            await File.WriteAllBytesAsync(file.Path, data);
            file.ContentId = (await FileIndexer.IndexAsync(file.Path, ChunkSize)).ContentId.Text;
        }

        var homes = Enumerable.Range(1, HostileHost).Select(i => Path.Combine(_root, $"h{i}")).ToArray();
        string Home(int i) => homes[i - 1];
        var ids = Enumerable.Range(1, HostileHost).Select(i => Identity(Home(i))).ToArray();
        string Id(int i) => ids[i - 1];
        var hostile = Id(HostileHost);

        using var lan = NamespaceLan.Create(Subnet, HostileHost);
        // The hostile peer floods from its own address and three more: half-open connections, stalled handshakes and
        // garbage from three of them (more than the per-address cap on handshakes in progress), strangers from the last.
        var floodFrom = new[] { lan.Address(HostileHost) }.Concat(Enumerable.Range(201, 3).Select(last => lan.AddAddress(HostileHost, last))).ToArray();

        for (var i = 1; i <= Honest; i++)
        {
            Ok(Home(i), "config", "set", "discovery", "off");
            Ok(Home(i), "config", "set", "chunk-size", ChunkSize.ToString(CultureInfo.InvariantCulture));
            // Honest seeders serve at most 512 KiB/s per peer, so each download lasts a few seconds and the liar's
            // (instant) answers are sure to arrive while it runs.
            Ok(Home(i), "config", "set", "upload-limit", "512k");
            for (var j = 1; j <= HostileHost; j++)
            {
                if (j != i)
                {
                    Ok(Home(i), "peers", "add", Id(j), "--trust", "--name", j == HostileHost ? "mallory" : $"h{j}", "--addr", $"{lan.Address(j)}:4747");
                }
            }
        }
        foreach (var file in shared)
        {
            foreach (var seeder in file.Seeders)
            {
                Ok(Home(seeder), "share", "add", file.Path);
            }
        }
        var configured = clock.Elapsed;

        var processes = new List<NodeProcess>();
        var honest = new NodeProcess[Honest + 1];
        try
        {
            // The hostile host runs two processes: the liar (the trusted peer's identity) and, niced, the flooder.
            var hostileDll = Path.Combine(AppContext.BaseDirectory, "SecureMesh.HostilePeer.dll");
            var liar = NodeProcess.StartDll(hostileDll, lan.Namespace(HostileHost),
                ["--home", Home(HostileHost), "--listen", $"{lan.Address(HostileHost)}:4747", "--chunk-size", ChunkSize.ToString(CultureInfo.InvariantCulture),
                 .. shared.SelectMany(f => new[] { "--file", f.Path })]);
            processes.Add(liar);
            var flooder = NodeProcess.StartCommand(lan.Namespace(HostileHost),
                ["nice", "-n", "10", NodeProcess.Dotnet, hostileDll,
                 .. Enumerable.Range(1, Honest).SelectMany(i => new[] { "--target", $"{lan.Address(i)}:4747" }),
                 .. floodFrom.SelectMany(a => new[] { "--flood-from", a })]);
            processes.Add(flooder);
            await liar.WaitForLineAsync("listening on", Patience);
            await flooder.WaitForLineAsync("flooding", Patience);
            var floodStarted = clock.Elapsed;
            for (var i = 1; i <= Honest; i++)
            {
                honest[i] = NodeProcess.Start(Home(i), lan.Namespace(i), "run", "--listen", $"{lan.Address(i)}:4747");
                processes.Add(honest[i]);
            }
            for (var i = 1; i <= Honest; i++)
            {
                await honest[i].WaitForLineAsync("control socket", Patience);
            }
            var started = clock.Elapsed;

            // Every honest node reaches all seven others, the liar included, although the flood runs all along. A status
            // the node is too busy to answer within the control client's deadline (eight processes starting under the
            // flood on a loaded machine) is asked again.
            for (var i = 1; i <= Honest; i++)
            {
                var want = Enumerable.Range(1, HostileHost).Where(j => j != i).Select(Id).ToHashSet();
                await UntilAsync(() => TryConnected(Home(i))?.IsSupersetOf(want) == true, $"h{i} connected to all seven peers", processes);
            }
            var meshed = clock.Elapsed;

            // Searches see the honest seeders and the liar, which claims everything. Connected is not yet searchable:
            // status lists a session once its handshake is done, but a search asks only the peers whose transfer session
            // is ready (hellos exchanged on its own stream), and of two connections dialled at once one is closed and its
            // search unanswered while the other gets ready. So each search is asked until every expected peer answers.
            foreach (var file in shared)
            {
                foreach (var downloader in file.Downloaders)
                {
                    var want = file.Seeders.Select(Id).Append(hostile).ToHashSet();
                    var deadline = DateTime.UtcNow + Patience;
                    while (true)
                    {
                        var hit = Cli.Json("--home", Home(downloader), "search", Path.GetFileNameWithoutExtension(file.Path)).EnumerateArray()
                            .SingleOrDefault(h => h.GetProperty("contentId").GetString() == file.ContentId);
                        var peers = hit.ValueKind == JsonValueKind.Object ? hit.GetProperty("peers").EnumerateArray().Select(p => p.GetString()!).ToHashSet() : [];
                        if (peers.IsSupersetOf(want))
                        {
                            break;
                        }
                        Assert.True(DateTime.UtcNow < deadline,
                            $"not within {Patience.TotalSeconds:0}s: h{downloader}'s search for {file.ContentId} answered by {string.Join(", ", want)}; " +
                            $"{(hit.ValueKind == JsonValueKind.Object ? "missing " + string.Join(", ", want.Except(peers)) : "no hit")}\n{Tails(processes)}");
                        await Task.Delay(250);
                    }
                }
            }

            // Every download at once, each through its node's control socket, the flood still running.
            var gets = new List<Task<(int Node, SharedFile File, CommandResult Result)>>();
            foreach (var file in shared)
            {
                foreach (var downloader in file.Downloaders)
                {
                    gets.Add(GetAsync(downloader, file, Home(downloader), Path.Combine(_root, "out", $"h{downloader}")));
                }
            }
            var results = await Task.WhenAll(gets);
            var fetched = clock.Elapsed;
            foreach (var (node, file, result) in results)
            {
                Assert.True(result.ExitCode == 0, $"h{node} get {Path.GetFileName(file.Path)}: {result}\n{Tails(processes)}");
                var json = JsonDocument.Parse(result.Out).RootElement;
                Assert.Equal("released", json.GetProperty("state").GetString());
                var released = json.GetProperty("path").GetString()!;
                Assert.Equal(Path.GetFileName(file.Path), Path.GetFileName(released));
                var expected = await File.ReadAllBytesAsync(file.Path);
                var actual = await File.ReadAllBytesAsync(released);
                Assert.True(expected.SequenceEqual(actual), $"h{node}: {released} differs from {file.Path}");
            }

            var lies = Stats(liar);
            Assert.True(lies["sessions"] >= Honest, $"the liar served too few sessions: {liar.Output}");
            Assert.True(lies["lies"] > 0, $"the liar was never asked for a chunk: {StatsLine(liar)}");
            Assert.Equal(lies["chunkRequests"], lies["lies"]);
            var flood = Stats(flooder);
            Assert.True(flood["floodConnections"] >= 500, $"the flood never got going: {StatsLine(flooder)}");
            Assert.True(flood["cutAfterWaiting"] > 0, $"no half-open connection was ever cut by a handshake deadline: {StatsLine(flooder)}");
            Assert.True(flood["closedAtOnce"] > 0, $"no flood connection was ever refused by a cap or filter: {StatsLine(flooder)}");
            Assert.True(flood["strangerHandshakes"] > 0, $"no stranger handshake completed: {StatsLine(flooder)}");
            Assert.True(flood["strangerAnswers"] == 0, $"an honest node answered an unknown peer: {StatsLine(flooder)}");

            // Every downloader caught the liar, with the evidence in its audit log; whoever got three bad chunks from it
            // (the engine's threshold) banned it; no honest peer was blamed anywhere; every audit chain verifies.
            var banned = 0;
            var mostPending = 0;
            for (var i = 1; i <= Honest; i++)
            {
                var log = Cli.Json("--home", Home(i), "log").EnumerateArray()
                    .Select(e => (Event: e.GetProperty("event").GetString(), Peer: e.TryGetProperty("peerId", out var p) ? p.GetString() : null, Detail: e.GetProperty("detail").GetString()))
                    .ToList();
                Assert.Equal(0, Cli.Run("--home", Home(i), "log", "--verify").ExitCode);
                var peers = Cli.Json("--home", Home(i), "peers", "list").EnumerateArray()
                    .ToDictionary(p => p.GetProperty("peerId").GetString()!, p => p.GetProperty("state").GetString());
                foreach (var j in Enumerable.Range(1, Honest).Where(j => j != i))
                {
                    Assert.Equal("trusted", peers[Id(j)]);
                }
                Assert.DoesNotContain(log, e => e.Event is "chunk.rejected" or "peer.banned" or "manifest.rejected" && e.Peer != hostile);
                var downloads = shared.Where(f => f.Downloaders.Contains(i)).Select(f => f.ContentId).ToList();
                var rejected = log.Where(e => e.Event == "chunk.rejected" && e.Peer == hostile).ToList();
                Assert.True(downloads.Count == 0 || rejected.Count > 0, $"h{i} recorded no rejected chunk from the liar:\n{string.Join('\n', log.Where(e => e.Peer == hostile))}");
                Assert.All(rejected, e => Assert.Contains(downloads, d => e.Detail!.Contains($"content={d} chunk=", StringComparison.Ordinal)));
                if (rejected.Count >= 3)
                {
                    Assert.Contains(log, e => e.Event == "peer.banned" && e.Peer == hostile);
                    Assert.Equal("blocked", peers[hostile]);
                    banned++;
                }
                else
                {
                    // Dropped from the download after one or two lies (its other requests were not sent yet): not banned.
                    Assert.Equal("trusted", peers[hostile]);
                }

                // Strangers complete handshakes, but the per-address budget (a burst of 10, then one per 5 s, refusals
                // doubling the wait) keeps them from flooding the trust store with pending records.
                var pending = Cli.Json("--home", Home(i), "peers", "pending").GetArrayLength();
                mostPending = Math.Max(mostPending, pending);
                var budget = 10 + (int)((clock.Elapsed - floodStarted).TotalSeconds / 5) + 8;
                Assert.True(pending <= budget, $"h{i} recorded {pending} pending strangers, over the budget of {budget}");
            }
            Assert.True(banned > 0, "no node banned the liar");

            // The honest mesh is whole after the attack, and every node stops cleanly with the flood still running.
            for (var i = 1; i <= Honest; i++)
            {
                var want = Enumerable.Range(1, Honest).Where(j => j != i).Select(Id).ToHashSet();
                Assert.Superset(want, Connected(Home(i)));
            }
            for (var i = 1; i <= Honest; i++)
            {
                honest[i].Signal(15);
            }
            for (var i = 1; i <= Honest; i++)
            {
                Assert.Equal(0, await honest[i].WaitForExitAsync(TimeSpan.FromSeconds(30)));
            }
            liar.Signal(15);
            flooder.Signal(15);
            Assert.Equal(0, await liar.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            Assert.Equal(0, await flooder.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"multi-host: configured {configured.TotalSeconds:0.0}s, nodes up {started.TotalSeconds:0.0}s, meshed {meshed.TotalSeconds:0.0}s, fetched {fetched.TotalSeconds:0.0}s, done {clock.Elapsed.TotalSeconds:0.0}s; liar banned by {banned}/{Honest}; at most {mostPending} pending strangers per node; liar {StatsLine(liar)}; flooder {StatsLine(flooder)}"));
        }
        finally
        {
            foreach (var process in processes)
            {
                process.Dispose();
            }
        }
    }

    private sealed class SharedFile(string path, int size, int[] seeders, int[] downloaders)
    {
        public string Path { get; } = path;

        public int Size { get; } = size;

        public int[] Seeders { get; } = seeders;

        public int[] Downloaders { get; } = downloaders;

        public string ContentId { get; set; } = string.Empty;
    }

    private static async Task<(int, SharedFile, CommandResult)> GetAsync(int node, SharedFile file, string home, string outDir) =>
        (node, file, await RunAsync(home, Patience, "get", file.ContentId, "--out", outDir, "--json"));

    /// <summary>Runs the <c>securemesh</c> program (outside the namespaces: it reaches the node through its control socket); killed after <paramref name="timeout"/>.</summary>
    private static Task<CommandResult> RunAsync(string home, TimeSpan timeout, params string[] args) => SecureMeshCli.RunAsync(home, timeout, args);

    internal static void Ok(string home, params string[] args)
    {
        var (code, _, err) = Cli.Run(["--home", home, .. args]);
        Assert.True(code == 0, $"securemesh {string.Join(' ', args)}: exit {code}: {err}");
    }

    internal static string Identity(string home)
    {
        Ok(home, "init");
        return Cli.Json("--home", home, "id").GetProperty("peerId").GetString()!;
    }

    internal static HashSet<string> Connected(string home) =>
        Cli.Json("--home", home, "status").GetProperty("connections").EnumerateArray().Select(c => c.GetProperty("peerId").GetString()!).ToHashSet();

    /// <summary>As <see cref="Connected"/>, or null when the node did not answer (for a wait to ask again).</summary>
    private static HashSet<string>? TryConnected(string home)
    {
        var (code, output, _) = Cli.Run("--home", home, "status", "--json");
        if (code != 0)
        {
            return null;
        }
        using var doc = JsonDocument.Parse(output);
        return doc.RootElement.GetProperty("connections").EnumerateArray().Select(c => c.GetProperty("peerId").GetString()!).ToHashSet();
    }

    private static async Task UntilAsync(Func<bool> condition, string what, List<NodeProcess> nodes)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not within {Patience.TotalSeconds:0}s: {what}\n{Tails(nodes)}");
            await Task.Delay(250);
        }
    }

    private static string StatsLine(NodeProcess hostile) =>
        hostile.Output.Split('\n').LastOrDefault(l => l.StartsWith("stats ", StringComparison.Ordinal)) ?? "(no stats yet)";

    private static Dictionary<string, long> Stats(NodeProcess hostile) =>
        StatsPair().Matches(StatsLine(hostile)).ToDictionary(m => m.Groups[1].Value, m => long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture));

    /// <summary>The last lines of every process (liar, flooder, h1…), for a failure message (the flood makes the full logs long).</summary>
    private static string Tails(List<NodeProcess> processes) => string.Join('\n', processes.Select((p, k) =>
        $"--- {k switch { 0 => "liar", 1 => "flooder", _ => $"h{k - 1}" }}:\n{string.Join('\n', p.Output.Split('\n').TakeLast(40))}"));

    [GeneratedRegex(@"(\w+)=(\d+)")]
    private static partial Regex StatsPair();

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
