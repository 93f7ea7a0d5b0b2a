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
    await QuickBenchmark.RunAsync(seconds);
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
