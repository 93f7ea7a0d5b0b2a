namespace SecureMesh.Tests.Shared;

/// <summary>Where tests/interop (js-libp2p's Noise driven by noise-peer.mjs, a stock js-libp2p node in libp2p-node.mjs) is, for every test project that uses it.</summary>
internal static class JsInterop
{
    /// <summary>The tests/interop folder; fails the test (never skips) when it or its node_modules is missing.</summary>
    public static string Directory()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "tests", "interop", "package.json")))
        {
            dir = dir.Parent;
        }
        Assert.True(dir is not null, "tests/interop/package.json not found above " + AppContext.BaseDirectory);
        var interop = Path.Combine(dir!.FullName, "tests", "interop");
        Assert.True(System.IO.Directory.Exists(Path.Combine(interop, "node_modules", "@chainsafe", "libp2p-noise"))
            && System.IO.Directory.Exists(Path.Combine(interop, "node_modules", "libp2p")),
            "tests/interop/node_modules is missing or old: run `npm ci --prefix tests/interop` first");
        return interop;
    }
}
