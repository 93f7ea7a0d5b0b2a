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

// `idle-connections N [SECONDS] [run|host]`: the resident memory of a `securemesh run` node (or a bare MeshNode) with N idle authenticated sessions.
if (args.Length > 0 && args[0] == "idle-connections")
{
    await IdleConnections.RunAsync(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1000, args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 10,
        realNode: args.Length <= 3 || args[3] != "host");
    return;
}

if (args.Length > 0 && args[0] == "idle-node-host")
{
    await IdleConnections.HostAsync(args[1], int.Parse(args[2], CultureInfo.InvariantCulture));
    return;
}

// `libp2p-handshakes [SECONDS] [PARALLEL] [WARMUP]`: libp2p connections per second into a node (multistream, Noise, yamux).
if (args.Length > 0 && args[0] == "libp2p-handshakes")
{
    await SecureMesh.Benchmarks.Libp2pHandshakes.RunAsync(
        args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 10,
        args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 8,
        args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 20);
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

// `yamux [SECONDS] [ROUNDS] [tcp]`: one yamux stream vs the bare Noise stream (`NoiseStream` after the same upgrade, no yamux), interleaved pairs, medians; `tcp`: also vs raw TCP.
if (args.Length > 0 && args[0] == "yamux")
{
    await SecureMesh.Benchmarks.YamuxBenchmark.RunAsync(
        args.Length > 1 ? double.Parse(args[1], CultureInfo.InvariantCulture) : 3,
        args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 5,
        withTcp: args.Length > 3 && args[3] == "tcp");
    return;
}

// `yamux-sink PORT` and `yamux-source HOST PORT SECONDS`: one yamux stream over plain TCP between two hosts (see scripts/yamux-netem.sh).
if (args.Length > 1 && args[0] == "yamux-sink")
{
    await SecureMesh.Benchmarks.YamuxBenchmark.SinkAsync(int.Parse(args[1], CultureInfo.InvariantCulture));
    return;
}

if (args.Length > 3 && args[0] == "yamux-source")
{
    await SecureMesh.Benchmarks.YamuxBenchmark.SourceAsync(args[1], int.Parse(args[2], CultureInfo.InvariantCulture), double.Parse(args[3], CultureInfo.InvariantCulture));
    return;
}

// `delay-forwarder LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS QUEUE_MB`: a TCP forwarder adding DELAY_MS each way (scripts/yamux-netem.sh).
if (args.Length > 5 && args[0] == "delay-forwarder")
{
    await SecureMesh.Benchmarks.DelayForwarder.RunAsync(int.Parse(args[1], CultureInfo.InvariantCulture), args[2],
        int.Parse(args[3], CultureInfo.InvariantCulture), int.Parse(args[4], CultureInfo.InvariantCulture), int.Parse(args[5], CultureInfo.InvariantCulture));
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(SecureMesh.Benchmarks.HandshakeBenchmarks).Assembly).Run(args);
