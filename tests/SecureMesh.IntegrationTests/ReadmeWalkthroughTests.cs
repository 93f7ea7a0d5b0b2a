using System.Globalization;
using System.Text.RegularExpressions;

namespace SecureMesh.IntegrationTests;

/// <summary>
/// README.md's "Two people sharing a file", typed as written into two real shells (tmux), one for Alice and one for
/// Bob, with a <c>securemesh</c> command on PATH (a wrapper around the built dll). The only changes are the ones the
/// README itself gives for two nodes on one machine: each shell has its own SECUREMESH_HOME and HOME, Alice's node
/// listens on a free loopback port (<c>config set listen</c>), and the example addresses, Peer IDs, fingerprints and
/// the content ID are the real ones of this run.
/// </summary>
public sealed partial class ReadmeWalkthroughTests() : TempFolderTest("securemesh-readme-")
{
    private const string Passphrase = "a long passphrase";
    private static readonly TimeSpan StepPatience = TimeSpan.FromSeconds(90);

    [Fact]
    public void The_readme_alice_and_bob_walkthrough_works_as_written()
    {
        Assert.True(TmuxSession.IsAvailable, "tmux is needed for this test ('./test.sh' installs it)");
        var steps = ReadSteps();
        Assert.Contains(steps, s => s.Who == "alice" && s.Command.StartsWith("securemesh init --passphrase-stdin", StringComparison.Ordinal));
        Assert.Contains(steps, s => s.Who == "alice" && s.Command == "securemesh run");
        Assert.Contains(steps, s => s.Who == "bob" && s.Command.StartsWith("securemesh get b3:…", StringComparison.Ordinal));

        var bin = Directory.CreateDirectory(Path.Combine(Root, "bin")).FullName;
        var wrapper = Path.Combine(bin, "securemesh");
        File.WriteAllText(wrapper, $"#!/bin/sh\nexec {SecureMeshProgram.ShellCommand([])} \"$@\"\n");
        File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        var alice = new Person("alice", Root, bin);
        var bob = new Person("bob", Root, bin);
        var data = new byte[700_000];
        new Random(15).NextBytes(data);
        var holiday = Directory.CreateDirectory(Path.Combine(alice.HomeDir, "Videos", "holiday")).FullName;
        File.WriteAllBytes(Path.Combine(holiday, "holiday beach.mp4"), data);
        var (alicePort, bobPort) = (FreePort(), FreePort());

        using var aliceShell = alice.Open();
        using var bobShell = bob.Open();
        string? contentId = null;
        foreach (var step in steps)
        {
            var person = step.Who == "alice" ? alice : bob;
            var other = step.Who == "alice" ? bob : alice;
            var shell = step.Who == "alice" ? aliceShell : bobShell;
            var command = step.Command
                .Replace("192.168.1.20:4747", $"127.0.0.1:{alicePort}", StringComparison.Ordinal)
                .Replace("192.168.1.21:4747", $"127.0.0.1:{bobPort}", StringComparison.Ordinal);
            command = PeerIdPlaceholder().Replace(command, _ => other.PeerId ?? throw new InvalidOperationException($"{other.Name} has no Peer ID yet"));
            command = FingerprintText().Replace(command, _ => other.Fingerprint!);
            if (command.Contains("b3:…", StringComparison.Ordinal))
            {
                command = command.Replace("b3:…", contentId ?? throw new InvalidOperationException("no content ID found by search yet"), StringComparison.Ordinal);
            }
            if (command == "securemesh run")
            {
                // The README's way to run a second node on one machine: its own port.
                person.Type(shell, $"securemesh config set listen 127.0.0.1:{alicePort}");
                person.WaitForPrompt(shell, 0);
                var asked = Count(shell, "Passphrase:");
                person.Type(shell, command);
                WaitForMore(shell, "Passphrase:", asked);
                shell.SendKeys(Passphrase, literal: true);
                shell.SendKeys("Enter");
                shell.WaitForText("listening on 127.0.0.1:" + alicePort.ToString(CultureInfo.InvariantCulture), StepPatience);
                continue;
            }
            var prompts = Count(shell, "Passphrase:");
            person.Type(shell, command);
            if (command == "securemesh init")
            {
                WaitForMore(shell, "Passphrase for the new identity", 0);
                shell.SendKeys("Enter");
            }
            if (command.StartsWith("securemesh share add", StringComparison.Ordinal))
            {
                // A protected identity is asked for, as the README says.
                WaitForMore(shell, "Passphrase:", prompts);
                shell.SendKeys(Passphrase, literal: true);
                shell.SendKeys("Enter");
            }
            var output = person.WaitForPrompt(shell, 0);
            if (command == "securemesh id")
            {
                var id = Regex.Match(output, @"Peer ID:\s+(12D3KooW\w+)\s+Fingerprint:\s+([a-z0-9-]+)\s+Listen:\s+\S+");
                Assert.True(id.Success, output);
                person.PeerId = id.Groups[1].Value;
                person.Fingerprint = id.Groups[2].Value;
            }
            if (command.StartsWith("securemesh search", StringComparison.Ordinal))
            {
                Assert.Contains("holiday beach.mp4", output, StringComparison.Ordinal);
                contentId = Regex.Match(output, "b3:[a-z0-9]+").Value;
                Assert.StartsWith("b3:", contentId, StringComparison.Ordinal);
            }
        }

        Assert.Equal(data, File.ReadAllBytes(Path.Combine(bob.HomeDir, "Downloads", "holiday beach.mp4")));
        aliceShell.SendKeys("C-c");
        aliceShell.WaitForText("stopped", StepPatience);
    }

    private static int Count(TmuxSession shell, string text) => Regex.Matches(shell.CaptureAll(), Regex.Escape(text)).Count;

    /// <summary>Waits until <paramref name="text"/> shows more often than <paramref name="before"/> times (a new prompt for it).</summary>
    private static void WaitForMore(TmuxSession shell, string text, int before)
    {
        var deadline = DateTime.UtcNow + StepPatience;
        while (Count(shell, text) <= before)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"no new \"{text}\"; the shell:\n{shell.CaptureAll()}");
            }
            Thread.Sleep(100);
        }
    }

    /// <summary>The section's commands, in order: the lines of its sh blocks that start with a prompt.</summary>
    private static List<(string Who, string Command)> ReadSteps()
    {
        var readme = File.ReadAllText(Path.Combine(RepositoryRoot(), "README.md"));
        var start = readme.IndexOf("## Two people sharing a file", StringComparison.Ordinal);
        Assert.True(start >= 0, "README.md has no 'Two people sharing a file' section");
        var end = readme.IndexOf("\n## ", start + 5, StringComparison.Ordinal);
        var section = readme[start..(end < 0 ? readme.Length : end)];
        var steps = new List<(string, string)>();
        foreach (Match block in ShBlock().Matches(section))
        {
            foreach (var line in block.Groups[1].Value.Split('\n'))
            {
                var prompt = Regex.Match(line, @"^(alice|bob)\$ (.+)$");
                if (prompt.Success)
                {
                    steps.Add((prompt.Groups[1].Value, prompt.Groups[2].Value.Trim()));
                }
            }
        }
        return steps;
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "SecureMesh.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"SecureMesh.sln not found above {AppContext.BaseDirectory}");
    }

    [GeneratedRegex("```sh\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex ShBlock();

    [GeneratedRegex(@"12D3KooW\w*…")]
    private static partial Regex PeerIdPlaceholder();

    [GeneratedRegex(@"\b[a-z2-7]{4}(-[a-z2-7]{4}){4}\b")]
    private static partial Regex FingerprintText();

    /// <summary>One person: their data directory, their home folder, their shell, what they learned.</summary>
    private sealed class Person(string name, string root, string bin)
    {
        private int _commands;

        public string Name { get; } = name;

        public string HomeDir { get; } = Directory.CreateDirectory(Path.Combine(root, name + "-home")).FullName;

        public string DataDir { get; } = Path.Combine(root, name + "-securemesh");

        public string? PeerId { get; set; }

        public string? Fingerprint { get; set; }

        public TmuxSession Open()
        {
            var shell = TmuxSession.Start(["/bin/bash", "--norc", "--noprofile", "-i"], 220, 50, new Dictionary<string, string>
            {
                ["PATH"] = $"{bin}:{Environment.GetEnvironmentVariable("PATH")}",
                ["HOME"] = HomeDir,
                ["SECUREMESH_HOME"] = DataDir,
                ["PS1"] = $"[\\# $?] {Name}$ ",
                ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
            });
            WaitForPrompt(shell, 0);
            return shell;
        }

        public void Type(TmuxSession shell, string command)
        {
            shell.SendKeys(command, literal: true);
            shell.SendKeys("Enter");
        }

        /// <summary>Waits for the next prompt; asserts the command before it exited with <paramref name="exitCode"/>; returns its output.</summary>
        public string WaitForPrompt(TmuxSession shell, int exitCode)
        {
            _commands++;
            var prompt = $"[{_commands.ToString(CultureInfo.InvariantCulture)} ";
            var deadline = DateTime.UtcNow + StepPatience;
            while (true)
            {
                var all = shell.CaptureAll();
                var at = all.LastIndexOf(prompt, StringComparison.Ordinal);
                if (at >= 0 && all.IndexOf($"] {Name}$", at, StringComparison.Ordinal) > at)
                {
                    var status = all[(at + prompt.Length)..all.IndexOf(']', at)];
                    var before = all.LastIndexOf($"{Name}$ ", at, StringComparison.Ordinal);
                    var output = before < 0 ? all[..at] : all[before..at];
                    Assert.True(status == exitCode.ToString(CultureInfo.InvariantCulture), $"{Name}: the command ended with {status}:\n{output}");
                    return output;
                }
                if (DateTime.UtcNow > deadline)
                {
                    throw new TimeoutException($"{Name}'s prompt {prompt}… never came back; the shell:\n{all}");
                }
                Thread.Sleep(100);
            }
        }
    }
}
