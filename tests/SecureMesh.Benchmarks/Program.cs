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

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
