using System.Diagnostics;
using System.Globalization;

namespace SecureMesh.IntegrationTests;

/// <summary>
/// A switched LAN of network namespaces made with iproute2: one "switch" namespace holding a Linux bridge, and one
/// namespace per host with a veth to the bridge, an address <c>SUBNET.i/24</c> and loopback up. Nothing is created in
/// the host's own namespace (the veth pairs are made inside the switch namespace and their host ends moved straight
/// into the host namespaces), so the subnet cannot clash with the machine's networks. The names carry the test
/// process id; namespaces left by an earlier run whose process is gone are removed (and their processes killed)
/// first. <see cref="Dispose"/> deletes every namespace; kill the processes running in them before.
/// Needs root (its tests are [RootFact]: skipped for another user); every failure of <c>ip</c> is a test failure, never a skip.
/// </summary>
internal sealed partial class NamespaceLan : IDisposable
{
    private const string Prefix = "smlan";
    private readonly List<string> _namespaces = [];
    private readonly string _subnet;

    private NamespaceLan(string subnet, int hosts)
    {
        _subnet = subnet;
        Hosts = hosts;
        var tag = Prefix + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        Switch = tag + "-sw";
        HostNames = [.. Enumerable.Range(1, hosts).Select(i => $"{tag}-h{i}")];
    }

    /// <summary>The namespace holding the bridge.</summary>
    public string Switch { get; }

    /// <summary>Number of hosts.</summary>
    public int Hosts { get; }

    /// <summary>The host namespaces; host i (1-based) is <c>HostNames[i - 1]</c>.</summary>
    public IReadOnlyList<string> HostNames { get; }

    /// <summary>The namespace of host <paramref name="i"/> (1-based).</summary>
    public string Namespace(int i) => HostNames[i - 1];

    /// <summary>The address of host <paramref name="i"/> (1-based).</summary>
    public string Address(int i) => $"{_subnet}.{i}";

    /// <summary>Builds the LAN: <paramref name="hosts"/> hosts on <c><paramref name="subnet"/>.0/24</c>.</summary>
    public static NamespaceLan Create(string subnet, int hosts)
    {
        RemoveStale();
        var lan = new NamespaceLan(subnet, hosts);
        try
        {
            lan.Build();
        }
        catch
        {
            lan.Dispose();
            throw;
        }
        return lan;
    }

    /// <summary>Gives host <paramref name="i"/> one more address on the LAN (<c>SUBNET.last</c>).</summary>
    public string AddAddress(int i, int last)
    {
        var address = $"{_subnet}.{last}";
        Ip(check: true, "-n", Namespace(i), "addr", "add", address + "/24", "dev", "eth0");
        return address;
    }

    private void Build()
    {
        Add(Switch);
        Ip(check: true, "-n", Switch, "link", "add", "br0", "type", "bridge");
        Ip(check: true, "-n", Switch, "link", "set", "br0", "up");
        for (var i = 1; i <= Hosts; i++)
        {
            var ns = Namespace(i);
            var port = $"p{i}";
            Add(ns);
            Ip(check: true, "-n", Switch, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns);
            Ip(check: true, "-n", Switch, "link", "set", port, "master", "br0");
            Ip(check: true, "-n", Switch, "link", "set", port, "up");
            Ip(check: true, "-n", ns, "addr", "add", Address(i) + "/24", "dev", "eth0");
            Ip(check: true, "-n", ns, "link", "set", "eth0", "up");
            Ip(check: true, "-n", ns, "link", "set", "lo", "up");
        }
    }

    private void Add(string ns)
    {
        Ip(check: true, "netns", "add", ns);
        _namespaces.Add(ns);
    }

    /// <summary>Deletes the namespaces of earlier runs whose test process no longer exists, killing what still runs in them.</summary>
    private static void RemoveStale()
    {
        foreach (var line in Ip(check: false, "netns", "list").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var name = line.Split(' ')[0];
            var dash = name.IndexOf('-', StringComparison.Ordinal);
            if (!name.StartsWith(Prefix, StringComparison.Ordinal) || dash < 0
                || !int.TryParse(name.AsSpan(Prefix.Length, dash - Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                || Directory.Exists($"/proc/{pid}"))
            {
                continue;
            }
            KillAll(name);
            Ip(check: false, "netns", "del", name);
        }
    }

    private static void KillAll(string ns)
    {
        foreach (var text in Ip(check: false, "netns", "pids", ns).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                try
                {
                    using var process = Process.GetProcessById(pid);
                    process.Kill(entireProcessTree: true);
                    process.WaitForExit(5000);
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
                {
                    // Gone already.
                }
            }
        }
    }

    /// <summary>Kills anything still running in the namespaces, then deletes them (the bridge and veths go with them).</summary>
    public void Dispose()
    {
        for (var i = _namespaces.Count - 1; i >= 0; i--)
        {
            KillAll(_namespaces[i]);
            Ip(check: false, "netns", "del", _namespaces[i]);
        }
        _namespaces.Clear();
    }

    /// <summary>Runs <c>ip ARGS</c>; returns its standard output. With <paramref name="check"/>, a failure fails the test.</summary>
    internal static string Ip(bool check, params string[] args)
    {
        var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Assert.Fail($"cannot create network namespaces: 'ip' (iproute2) is not available ({e.Message})");
            return string.Empty;
        }
        using (process)
        {
            var stderr = process.StandardError.ReadToEndAsync();
            var output = process.StandardOutput.ReadToEnd();
            process.WaitForExit(10_000);
            if (check && process.ExitCode != 0)
            {
                Assert.Fail($"cannot set up the namespaces: 'ip {string.Join(' ', args)}' failed: {stderr.Result.Trim()}");
            }
            return output;
        }
    }
}
