using System.Diagnostics;
using System.Globalization;
using BenchmarkDotNet.Attributes;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Transfer;
using SecureMesh.Storage;

namespace SecureMesh.Benchmarks;

/// <summary>
/// A database seeded for the per-request authorization: 100,000 peers (80 % trusted, 10 % pending, 10 % blocked),
/// 1,000 groups with every peer in two of them, 10,000 shares (10 % seen by all, 60 % by one group, 20 % by two groups
/// and a peer, 10 % by five peers) holding five files each (50,000 content IDs).
/// </summary>
internal sealed class SeededAudiences : IDisposable
{
    public const int Peers = 100_000;
    public const int Groups = 1_000;
    public const int Shares = 10_000;
    public const int FilesPerShare = 5;
    public const int Sample = 4096;

    public SeededAudiences()
    {
        Directory = Path.Combine(Path.GetTempPath(), "securemesh-bench-audience-" + Guid.NewGuid().ToString("N"));
        Db = SecureMeshDatabase.Open(Directory);
        var random = new Random(18);
        var key = new byte[32];
        var peers = new PeerId[Peers];
        var groupsOf = new int[Peers][];
        var membersOf = Enumerable.Range(0, Groups).Select(_ => new List<int>()).ToArray();
        var contentOf = new string[Shares][];
        var audienceGroups = new int[Shares][];
        var audiencePeers = new int[Shares][];
        var everyone = new bool[Shares];
        Db.Write(tx =>
        {
            using var insertPeer = SqliteCommandExtensions.Prepared(tx,
                "INSERT INTO peers (peer_id, state, fingerprint, created, updated) VALUES ($id, $state, 'fp', 0, 0)", "$id", "$state");
            for (var i = 0; i < Peers; i++)
            {
                random.NextBytes(key);
                peers[i] = PeerId.FromPublicKey(key);
                insertPeer.Parameters[0].Value = peers[i].Text;
                insertPeer.Parameters[1].Value = (i % 10) switch { 0 => "blocked", 1 => "pending", _ => "trusted" };
                insertPeer.ExecuteNonQuery();
            }
            using var insertGroup = SqliteCommandExtensions.Prepared(tx, "INSERT INTO peer_groups (name, created) VALUES ($name, 0)", "$name");
            for (var g = 0; g < Groups; g++)
            {
                insertGroup.Parameters[0].Value = GroupName(g);
                insertGroup.ExecuteNonQuery();
            }
            using var insertMember = SqliteCommandExtensions.Prepared(tx,
                "INSERT OR IGNORE INTO peer_group_members (group_name, peer_id, added) VALUES ($g, $p, 0)", "$g", "$p");
            for (var i = 0; i < Peers; i++)
            {
                var a = random.Next(Groups);
                var b = random.Next(Groups);
                groupsOf[i] = a == b ? [a] : [a, b];
                foreach (var g in groupsOf[i])
                {
                    membersOf[g].Add(i);
                    insertMember.Parameters[0].Value = GroupName(g);
                    insertMember.Parameters[1].Value = peers[i].Text;
                    insertMember.ExecuteNonQuery();
                }
            }
            using var insertShare = SqliteCommandExtensions.Prepared(tx, "INSERT INTO shares (path, added) VALUES ($p, 0)", "$p");
            using var clearAudience = SqliteCommandExtensions.Prepared(tx, "DELETE FROM share_audience WHERE share_path = $p", "$p");
            using var insertAudience = SqliteCommandExtensions.Prepared(tx,
                "INSERT INTO share_audience (share_path, kind, group_name, peer_id) VALUES ($p, $k, $g, $peer)", "$p", "$k", "$g", "$peer");
            using var insertFile = SqliteCommandExtensions.Prepared(tx,
                "INSERT INTO catalog (path, size, mtime_ns, content_id, chunk_size, indexed_at, name, share_root) VALUES ($path, 1, 0, $cid, 1048576, 0, $name, $root)",
                "$path", "$cid", "$name", "$root");
            for (var s = 0; s < Shares; s++)
            {
                var path = SharePath(s);
                insertShare.Parameters[0].Value = path;
                insertShare.ExecuteNonQuery();
                var kind = s % 10;
                audienceGroups[s] = kind switch { 0 => [], < 7 => [random.Next(Groups)], < 9 => [random.Next(Groups), random.Next(Groups)], _ => [] };
                audiencePeers[s] = kind switch { 7 or 8 => [random.Next(Peers)], 9 => [.. Enumerable.Range(0, 5).Select(_ => random.Next(Peers))], _ => [] };
                everyone[s] = kind == 0;
                if (!everyone[s])
                {
                    clearAudience.Parameters[0].Value = path;
                    clearAudience.ExecuteNonQuery();
                    foreach (var g in audienceGroups[s].Distinct())
                    {
                        Audience(insertAudience, path, "group", GroupName(g), null);
                    }
                    foreach (var p in audiencePeers[s].Distinct())
                    {
                        Audience(insertAudience, path, "peer", null, peers[p].Text);
                    }
                }
                contentOf[s] = new string[FilesPerShare];
                for (var f = 0; f < FilesPerShare; f++)
                {
                    var cid = RandomContentId(random);
                    contentOf[s][f] = cid;
                    insertFile.Parameters[0].Value = $"{path}/sub/file-{f.ToString(CultureInfo.InvariantCulture)}.bin";
                    insertFile.Parameters[1].Value = cid;
                    insertFile.Parameters[2].Value = $"file-{f.ToString(CultureInfo.InvariantCulture)}.bin";
                    insertFile.Parameters[3].Value = path;
                    insertFile.ExecuteNonQuery();
                }
            }
            return 0;
        });

        // Requests a real node sees: a trusted peer asking for content it may see (found on the first or a later
        // share), for content it may not see, for content that does not exist; and a blocked peer asking.
        var allowed = new List<(PeerId, string, string)>();
        var denied = new List<(PeerId, string, string)>();
        while (allowed.Count < Sample || denied.Count < Sample)
        {
            var s = random.Next(Shares);
            var f = random.Next(FilesPerShare);
            var file = $"{SharePath(s)}/sub/file-{f.ToString(CultureInfo.InvariantCulture)}.bin";
            int candidate;
            if (everyone[s])
            {
                candidate = random.Next(Peers);
            }
            else if (audienceGroups[s].Length > 0 && random.Next(2) == 0)
            {
                var members = membersOf[audienceGroups[s][0]];
                candidate = members.Count == 0 ? random.Next(Peers) : members[random.Next(members.Count)];
            }
            else
            {
                candidate = audiencePeers[s].Length > 0 && random.Next(2) == 0 ? audiencePeers[s][0] : random.Next(Peers);
            }
            if (candidate % 10 < 2)
            {
                continue;
            }
            var sees = everyone[s] || audiencePeers[s].Contains(candidate) || audienceGroups[s].Any(g => groupsOf[candidate].Contains(g));
            var list = sees ? allowed : denied;
            if (list.Count < Sample)
            {
                list.Add((peers[candidate], contentOf[s][f], file));
            }
        }
        Allowed = [.. allowed];
        Denied = [.. denied];
        Unknown = [.. Enumerable.Range(0, Sample).Select(i => (Allowed[i].Peer, RandomContentId(random), Allowed[i].Path + ".gone"))];
        Blocked = [.. Enumerable.Range(0, Sample).Select(i => (peers[i * 10 % Peers], Allowed[i].ContentId, Allowed[i].Path))];
        SomePeers = [.. Enumerable.Range(0, 64).Select(i => peers[i * 7 + 2])];
    }

    public string Directory { get; }
    public SecureMeshDatabase Db { get; }
    public (PeerId Peer, string ContentId, string Path)[] Allowed { get; }
    public (PeerId Peer, string ContentId, string Path)[] Denied { get; }
    public (PeerId Peer, string ContentId, string Path)[] Unknown { get; }
    public (PeerId Peer, string ContentId, string Path)[] Blocked { get; }
    public PeerId[] SomePeers { get; }

    public static string GroupName(int g) => "group-" + g.ToString(CultureInfo.InvariantCulture);

    public static string SharePath(int s) => "/bench/share-" + s.ToString(CultureInfo.InvariantCulture);

    private static void Audience(Microsoft.Data.Sqlite.SqliteCommand insert, string path, string kind, string? group, string? peer)
    {
        insert.Parameters[0].Value = path;
        insert.Parameters[1].Value = kind;
        insert.Parameters[2].Value = (object?)group ?? DBNull.Value;
        insert.Parameters[3].Value = (object?)peer ?? DBNull.Value;
        insert.ExecuteNonQuery();
    }

    private static string RandomContentId(Random random)
    {
        const string alphabet = "abcdefghijklmnopqrstuvwxyz234567";
        var chars = new char[55];
        "b3:".CopyTo(chars);
        for (var c = 3; c < chars.Length; c++)
        {
            chars[c] = alphabet[random.Next(32)];
        }
        return new string(chars);
    }

    public void Dispose()
    {
        Db.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}

/// <summary>BenchmarkDotNet view of the per-request audience check (run with <c>--filter *AudienceBenchmarks*</c>).</summary>
[MemoryDiagnoser]
[MinColumn, MaxColumn, Q3Column, AllStatisticsColumn]
public class AudienceBenchmarks
{
    private SeededAudiences _seed = null!;
    private ShareAuthorizer _access = null!;
    private int _i;

    /// <summary>Seeds the database and builds the snapshot once.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _seed = new SeededAudiences();
        _access = new ShareAuthorizer(_seed.Db);
        _access.Refresh();
    }

    /// <summary>Removes the database.</summary>
    [GlobalCleanup]
    public void Cleanup() => _seed.Dispose();

    /// <summary>A trusted peer asking for content in a share it may see.</summary>
    [Benchmark(Baseline = true)]
    public bool ContentAllowed()
    {
        var (peer, content, _) = _seed.Allowed[_i++ & (SeededAudiences.Sample - 1)];
        return _access.CanSee(peer, content);
    }

    /// <summary>A trusted peer asking for content outside its audience.</summary>
    [Benchmark]
    public bool ContentDenied()
    {
        var (peer, content, _) = _seed.Denied[_i++ & (SeededAudiences.Sample - 1)];
        return _access.CanSee(peer, content);
    }

    /// <summary>A content ID that is not in the catalog.</summary>
    [Benchmark]
    public bool ContentUnknown()
    {
        var (peer, content, _) = _seed.Unknown[_i++ & (SeededAudiences.Sample - 1)];
        return _access.CanSee(peer, content);
    }

    /// <summary>The per-file check search and manifest selection use.</summary>
    [Benchmark]
    public bool PathAllowed()
    {
        var (peer, _, path) = _seed.Allowed[_i++ & (SeededAudiences.Sample - 1)];
        return _access.CanSeePath(peer, path);
    }
}

/// <summary>Per-call latency percentiles of the audience check, and the cost of rebuilding the snapshot.</summary>
internal static class AudienceLatency
{
    public static void Run(int calls)
    {
        Console.WriteLine($"seeding {SeededAudiences.Peers:N0} peers, {SeededAudiences.Groups:N0} groups, {SeededAudiences.Shares:N0} shares, {SeededAudiences.Shares * SeededAudiences.FilesPerShare:N0} files...");
        var clock = Stopwatch.StartNew();
        using var seed = new SeededAudiences();
        Console.WriteLine($"seeded in {clock.Elapsed.TotalSeconds:F1} s; {calls:N0} calls per case");

        var access = new ShareAuthorizer(seed.Db);
        var builds = new List<double>();
        for (var i = 0; i < 3; i++)
        {
            // A membership change forces a rebuild of the peer and audience part (the catalog part is kept).
            seed.Db.Groups.AddMembers(SeededAudiences.GroupName(i), [seed.SomePeers[i]]);
            clock.Restart();
            access.Refresh();
            builds.Add(clock.Elapsed.TotalMilliseconds);
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"snapshot build: first {builds[0]:F0} ms (with the catalog), after a membership change {builds[1]:F0} / {builds[2]:F0} ms"));

        clock.Restart();
        _ = seed.Db.Groups.ReadAccessData();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"of which reading peers, members and audiences from SQLite: {clock.Elapsed.TotalMilliseconds:F0} ms"));

        var checkedAllowed = seed.Allowed.Count(x => access.CanSee(x.Peer, x.ContentId));
        var checkedDenied = seed.Denied.Count(x => access.CanSee(x.Peer, x.ContentId));
        Console.WriteLine($"sanity: {checkedAllowed}/{seed.Allowed.Length} allowed pairs allowed, {checkedDenied}/{seed.Denied.Length} denied pairs allowed");

        const int mask = SeededAudiences.Sample - 1;
        Measure("CanSee, allowed content", calls, i => access.CanSee(seed.Allowed[i & mask].Peer, seed.Allowed[i & mask].ContentId));
        Measure("CanSee, content outside the audience", calls, i => access.CanSee(seed.Denied[i & mask].Peer, seed.Denied[i & mask].ContentId));
        Measure("CanSee, unknown content", calls, i => access.CanSee(seed.Unknown[i & mask].Peer, seed.Unknown[i & mask].ContentId));
        Measure("CanSee, blocked or pending peer", calls, i => access.CanSee(seed.Blocked[i & mask].Peer, seed.Blocked[i & mask].ContentId));
        Measure("CanSeePath, allowed file", calls, i => access.CanSeePath(seed.Allowed[i & mask].Peer, seed.Allowed[i & mask].Path));

        // The same checks while memberships change four times a second and the node rebuilds meanwhile.
        using var stop = new CancellationTokenSource();
        var churn = Task.Run(async () =>
        {
            var n = 0;
            while (!stop.IsCancellationRequested)
            {
                var peer = seed.SomePeers[n++ % seed.SomePeers.Length];
                seed.Db.Groups.AddMembers(SeededAudiences.GroupName(999), [peer]);
                access.Refresh();
                seed.Db.Groups.RemoveMembers(SeededAudiences.GroupName(999), [peer]);
                access.Refresh();
                await Task.Delay(250).ConfigureAwait(false);
            }
        });
        Measure("CanSee, mixed, during rebuilds", calls, i => (i & 1) == 0
            ? access.CanSee(seed.Allowed[i & mask].Peer, seed.Allowed[i & mask].ContentId)
            : access.CanSee(seed.Denied[i & mask].Peer, seed.Denied[i & mask].ContentId));
        stop.Cancel();
        churn.GetAwaiter().GetResult();
    }

    private static void Measure(string name, int calls, Func<int, bool> call)
    {
        for (var i = 0; i < 10_000; i++)
        {
            call(i);
        }
        var samples = new long[calls];
        for (var i = 0; i < calls; i++)
        {
            var start = Stopwatch.GetTimestamp();
            call(i);
            samples[i] = Stopwatch.GetTimestamp() - start;
        }
        Array.Sort(samples);
        double Us(double q) => samples[Math.Min(calls - 1, (int)(q * calls))] * 1_000_000.0 / Stopwatch.Frequency;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name,-38} p50 {Us(0.50),7:F2} us  p90 {Us(0.90),7:F2} us  p99 {Us(0.99),7:F2} us  p99.9 {Us(0.999),8:F2} us  max {samples[^1] * 1_000_000.0 / Stopwatch.Frequency,9:F1} us"));
    }
}
