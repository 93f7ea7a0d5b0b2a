using System.Diagnostics;
using System.Globalization;
using System.Net;
using BenchmarkDotNet.Attributes;
using SecureMesh.Core.Identity;
using SecureMesh.Storage;

namespace SecureMesh.Benchmarks;

/// <summary>A database seeded with 100,000 peers, 100,000 blocked content IDs and 250 blocked ranges.</summary>
internal sealed class SeededStorage : IDisposable
{
    public const int Peers = 100_000;
    public const int BlockedContent = 100_000;
    public const int Sample = 4096;

    public SeededStorage()
    {
        Directory = Path.Combine(Path.GetTempPath(), "securemesh-bench-" + Guid.NewGuid().ToString("N"));
        Db = SecureMeshDatabase.Open(Directory);
        var random = new Random(7);
        var key = new byte[32];
        var peers = new List<PeerId>(Sample);
        var content = new List<string>(Sample);
        Db.Write(tx =>
        {
            using var insertPeer = SqliteCommandExtensions.Prepared(tx,
                "INSERT INTO peers (peer_id, name, state, fingerprint, created, updated) VALUES ($id, $name, $state, $fp, 0, 0)", "$id", "$name", "$state", "$fp");
            for (var i = 0; i < Peers; i++)
            {
                random.NextBytes(key);
                var peer = PeerId.FromPublicKey(key);
                insertPeer.Parameters[0].Value = peer.Text;
                insertPeer.Parameters[1].Value = "peer" + i.ToString(CultureInfo.InvariantCulture);
                insertPeer.Parameters[2].Value = (i % 10) switch { 0 => "blocked", < 5 => "pending", _ => "trusted" };
                insertPeer.Parameters[3].Value = "fp";
                insertPeer.ExecuteNonQuery();
                if (i % (Peers / Sample) == 0 && peers.Count < Sample)
                {
                    peers.Add(peer);
                }
            }
            using var insertContent = SqliteCommandExtensions.Prepared(tx,
                "INSERT INTO blocked_content (content_id, reason, created) VALUES ($id, 'bench', 0)", "$id");
            const string alphabet = "abcdefghijklmnopqrstuvwxyz234567";
            var chars = new char[55];
            "b3:".CopyTo(chars);
            for (var i = 0; i < BlockedContent; i++)
            {
                for (var c = 3; c < chars.Length; c++)
                {
                    chars[c] = alphabet[random.Next(32)];
                }
                var id = new string(chars);
                insertContent.Parameters[0].Value = id;
                insertContent.ExecuteNonQuery();
                if (i % (BlockedContent / Sample) == 0 && content.Count < Sample)
                {
                    content.Add(id);
                }
            }
            return 0;
        });
        for (var i = 0; i < 200; i++)
        {
            Db.Trust.BlockAddress($"10.{i.ToString(CultureInfo.InvariantCulture)}.7.0/24", "bench");
        }
        for (var i = 0; i < 50; i++)
        {
            Db.Trust.BlockAddress($"2001:db8:{i.ToString("x", CultureInfo.InvariantCulture)}::/48", "bench");
        }
        KnownPeers = [.. peers];
        BlockedIds = [.. content];
        UnknownPeers = [.. Enumerable.Range(0, Sample).Select(_ => { random.NextBytes(key); return PeerId.FromPublicKey(key); })];
        UnblockedIds = [.. BlockedIds.Select(id => id[..^1] + (id[^1] == 'a' ? 'b' : 'a'))];
    }

    public string Directory { get; }
    public SecureMeshDatabase Db { get; }
    public PeerId[] KnownPeers { get; }
    public PeerId[] UnknownPeers { get; }
    public string[] BlockedIds { get; }
    public string[] UnblockedIds { get; }

    public static readonly IPAddress CleanAddress = IPAddress.Parse("192.0.2.10");
    public static readonly IPAddress BlockedAddress = IPAddress.Parse("10.199.7.99");

    public void Dispose()
    {
        Db.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}

/// <summary>BenchmarkDotNet view of the authorization fast path (mean per call; run with <c>--filter *StorageBenchmarks*</c>).</summary>
[MemoryDiagnoser]
[MinColumn, MaxColumn, Q3Column, BenchmarkDotNet.Attributes.AllStatisticsColumn]
public class StorageBenchmarks
{
    private SeededStorage _storage = null!;
    private int _i;

    /// <summary>Seeds the database once.</summary>
    [GlobalSetup]
    public void Setup() => _storage = new SeededStorage();

    /// <summary>Removes the database.</summary>
    [GlobalCleanup]
    public void Cleanup() => _storage.Dispose();

    /// <summary>A known peer from a clean address.</summary>
    [Benchmark(Baseline = true)]
    public AuthorizationDecision AuthorizeKnownPeer() =>
        _storage.Db.Trust.Authorize(_storage.KnownPeers[_i++ & (SeededStorage.Sample - 1)], SeededStorage.CleanAddress);

    /// <summary>A peer not in the database.</summary>
    [Benchmark]
    public AuthorizationDecision AuthorizeUnknownPeer() =>
        _storage.Db.Trust.Authorize(_storage.UnknownPeers[_i++ & (SeededStorage.Sample - 1)], SeededStorage.CleanAddress);

    /// <summary>A known peer from a blocked range (scans the range list).</summary>
    [Benchmark]
    public AuthorizationDecision AuthorizeFromBlockedRange() =>
        _storage.Db.Trust.Authorize(_storage.KnownPeers[_i++ & (SeededStorage.Sample - 1)], SeededStorage.BlockedAddress);

    /// <summary>A blocked content ID.</summary>
    [Benchmark]
    public bool ContentBlockedHit() => _storage.Db.Trust.IsContentBlocked(_storage.BlockedIds[_i++ & (SeededStorage.Sample - 1)]);

    /// <summary>A content ID that is not blocked.</summary>
    [Benchmark]
    public bool ContentBlockedMiss() => _storage.Db.Trust.IsContentBlocked(_storage.UnblockedIds[_i++ & (SeededStorage.Sample - 1)]);
}

/// <summary>Per-call latency percentiles (BenchmarkDotNet reports per-iteration means, which hide tail latency).</summary>
internal static class StorageLatency
{
    public static void Run(int calls)
    {
        Console.WriteLine($"seeding {SeededStorage.Peers:N0} peers, {SeededStorage.BlockedContent:N0} blocked content IDs, 250 blocked ranges...");
        var seedClock = Stopwatch.StartNew();
        using var storage = new SeededStorage();
        Console.WriteLine($"seeded in {seedClock.Elapsed.TotalSeconds:F1} s; {calls:N0} calls per case");
        var trust = storage.Db.Trust;
        const int mask = SeededStorage.Sample - 1;
        Measure("Authorize known peer, clean address", calls, i => trust.Authorize(storage.KnownPeers[i & mask], SeededStorage.CleanAddress));
        Measure("Authorize unknown peer", calls, i => trust.Authorize(storage.UnknownPeers[i & mask], SeededStorage.CleanAddress));
        Measure("Authorize known peer, blocked range", calls, i => trust.Authorize(storage.KnownPeers[i & mask], SeededStorage.BlockedAddress));
        Measure("IsContentBlocked hit", calls, i => trust.IsContentBlocked(storage.BlockedIds[i & mask]));
        Measure("IsContentBlocked miss", calls, i => trust.IsContentBlocked(storage.UnblockedIds[i & mask]));
        Measure("ChangeStamp", calls, _ => storage.Db.ChangeStamp());
    }

    private static void Measure<T>(string name, int calls, Func<int, T> call)
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
