//! Prints the argon2id hash of the password given on standard input (one line), for `CONSOLE_USERS`:
//! `make console-password` asks for it without echoing it.

use std::io::BufRead;

fn main() -> std::process::ExitCode {
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        eprintln!("could not read the password from standard input");
        return std::process::ExitCode::FAILURE;
    }
    let password = line.trim_end_matches(['\r', '\n']);
    if password.chars().count() < 8 {
        eprintln!("a console password needs at least 8 characters");
        return std::process::ExitCode::FAILURE;
    }
    match console::hash_password(password) {
        Ok(hash) => {
            println!("{hash}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hashing failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
