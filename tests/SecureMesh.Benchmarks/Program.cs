using System.Globalization;
using BenchmarkDotNet.Running;
using SecureMesh.Benchmarks;

if (args.Length > 0 && args[0] == "--cpu")
{
    HandshakeCpuProbe.Run();
    AeadProbe.Run();
    return;
}

if (args.Length > 0 && args[0] == "--quick")
{
    var seconds = args.Length > 1 ? double.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 3;
    if (args.Length > 2 && args[2] == "secure")
    {
        await QuickBenchmark.RunSecureOnlyAsync(seconds);
        return;
    }
    var only = args.Length > 2 ? args[2] : "all";
    await QuickBenchmark.RunAsync(seconds, only is "all" or "handshake", only is "all" or "throughput");
    return;
}

// `storage-latency [CALLS]` prints per-call p50/p99 of the trust store's fast path; anything else goes to BenchmarkDotNet.
if (args.Length > 0 && args[0] == "storage-latency")
{
    SecureMesh.Benchmarks.StorageLatency.Run(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 100_000);
    return;
}

// `audience-latency [CALLS]`: per-request p50/p99 of "may this peer see this content?" with 100,000 peers, 1,000 groups
// and 10,000 shares, and the cost of rebuilding the in-memory snapshot.
if (args.Length > 0 && args[0] == "audience-latency")
{
    SecureMesh.Benchmarks.AudienceLatency.Run(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 200_000);
    return;
}

// `idle-connections N [SECONDS]`: the node's resident memory with N idle authenticated sessions.
if (args.Length > 0 && args[0] == "idle-connections")
{
    await IdleConnections.RunAsync(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1000, args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 10);
    return;
}

if (args.Length > 0 && args[0] == "idle-node-host")
{
    await IdleConnections.HostAsync(args[1], int.Parse(args[2], CultureInfo.InvariantCulture));
    return;
}

// `hostile-manifest SIZE CHUNK_SIZE`: peak RSS of a real `securemesh get` fed a lying trusted peer's manifest (issue 14).
if (args.Length > 2 && args[0] == "hostile-manifest")
{
    Environment.ExitCode = await SecureMesh.Benchmarks.HostileManifest.RunAsync(args[1], args[2]);
    return;
}

// `idle-node [PEERS] [SECONDS]`: RSS and CPU of a real idle node process with PEERS trusted peers connected.
if (args.Length > 0 && args[0] == "idle-node")
{
    await SecureMesh.Benchmarks.IdleNode.RunAsync(
        args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 20,
        args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 60);
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(SecureMesh.Benchmarks.HandshakeBenchmarks).Assembly).Run(args);
