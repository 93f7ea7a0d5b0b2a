using System.Globalization;
using System.Security.Cryptography;

namespace SecureMesh.IntegrationTests;

/// <summary>
/// Network namespaces for the issue-17 reach tests, named <c>h17n-RANDOM-NAME</c> so parallel runs never collide, joined by
/// veth pairs only (nothing is routed to or from the host), and deleted on dispose.
/// </summary>
internal sealed class ReachNamespaces : IDisposable
{
    private readonly string _tag = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(2));
    private readonly List<string> _names = [];

    /// <summary>Creates namespace <c>h17n-TAG-<paramref name="name"/></c> with loopback up; returns its full name.</summary>
    public string Add(string name)
    {
        var full = $"h17n-{_tag}-{name}";
        NamespaceLan.Ip(check: true, "netns", "add", full);
        _names.Add(full);
        NamespaceLan.Ip(check: true, "-n", full, "link", "set", "lo", "up");
        return full;
    }

    /// <summary>A veth pair between two namespaces, named <paramref name="nameA"/> and <paramref name="nameB"/> inside them, both up.</summary>
    public void Link(string nsA, string nameA, string nsB, string nameB)
    {
        // veth names are global until moved: the random tag keeps parallel runs apart.
        var a = $"h17n{_tag}{_names.Count}a";
        var b = $"h17n{_tag}{_names.Count}b";
        NamespaceLan.Ip(check: true, "link", "add", a, "type", "veth", "peer", "name", b);
        NamespaceLan.Ip(check: true, "link", "set", a, "netns", nsA);
        NamespaceLan.Ip(check: true, "link", "set", b, "netns", nsB);
        NamespaceLan.Ip(check: true, "-n", nsA, "link", "set", a, "name", nameA);
        NamespaceLan.Ip(check: true, "-n", nsB, "link", "set", b, "name", nameB);
        NamespaceLan.Ip(check: true, "-n", nsA, "link", "set", nameA, "up");
        NamespaceLan.Ip(check: true, "-n", nsB, "link", "set", nameB, "up");
        _names.Add(string.Empty);
    }

    public static void Address(string ns, string cidr, string device) => NamespaceLan.Ip(check: true, "-n", ns, "addr", "add", cidr, "dev", device);

    /// <summary>Runs a program to its end (inside <paramref name="ns"/> when given); a non-zero exit fails the test.</summary>
    public static string Run(string? ns, string program, params string[] args)
    {
        var start = new System.Diagnostics.ProcessStartInfo(ns is null ? program : "ip") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in ns is null ? args : ["netns", "exec", ns, program, .. args])
        {
            start.ArgumentList.Add(a);
        }
        using var process = System.Diagnostics.Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', args)}: exit {process.ExitCode.ToString(CultureInfo.InvariantCulture)}: {error}");
        return output;
    }

    public void Dispose()
    {
        foreach (var ns in _names.Where(n => n.Length > 0))
        {
            NamespaceLan.Ip(check: false, "netns", "del", ns);
        }
    }
}
