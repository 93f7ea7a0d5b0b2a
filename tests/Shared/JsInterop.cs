using System.Diagnostics;

namespace SecureMesh.Tests.Shared;

/// <summary>Where tests/interop (a stock js-libp2p node in libp2p-node.mjs, js yamux in yamux-peer.mjs) is, for every test project that uses it.</summary>
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

    /// <summary>
    /// Starts <c>node SCRIPT ARGS…</c> in tests/interop with stdout and stderr redirected (and stdin when
    /// <paramref name="withInput"/>); a missing Node.js is a clear failure.
    /// </summary>
    public static Process StartNode(string script, IEnumerable<string> args, bool withInput = false)
    {
        var start = new ProcessStartInfo("node")
        {
            WorkingDirectory = Directory(),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = withInput,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(script);
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }
        try
        {
            return Process.Start(start) ?? throw new InvalidOperationException("node did not start");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("Node.js (`node`) is needed for the interop tests", e);
        }
    }
}
